"""Format-lock Q&A episodes (the original ``generate_format_lock_dataset.py``): short, exact answers.

Fixes of the original's bugs (reference §3, §14.13):
- the language is tagged by the template that produced the pair, not by substring search
  (English "3 plus 4?" was tagged German);
- ``math="exclude"`` excludes every math pair, German included;
- a question never has two different answers: a conflicting pair is a programming error and raises.
The pairs are deduplicated (first occurrence wins), shuffled with ``random.Random(seed)`` and
numbered after the shuffle, as the original does.
"""

from __future__ import annotations

import random
from typing import Dict, List, Optional, Tuple

import datasets

from ..errors import MyPTInputError
from ..tokens import DEFAULT_SYSTEM_PROMPT
from .schema import EPISODE_FEATURES, make_episode

MODES = ("full", "minimal")
MATH_MODES = ("include", "exclude", "only", "minimal")


class _Pairs:
    """Ordered (question -> answer, category, language) with conflict detection."""

    def __init__(self) -> None:
        self.rows: Dict[str, Tuple[str, str, str]] = {}

    def add(self, question: str, answer: str, category: str, language: str) -> None:
        previous = self.rows.get(question)
        if previous is None:
            self.rows[question] = (answer, category, language)
        elif previous[0] != answer:
            raise AssertionError(f"format_lock: {question!r} has two answers: {previous[0]!r} and {answer!r}")

    def many(self, templates, items, category: str, language: str) -> None:
        """Each template × each (fill, answer) item; templates use {x}."""
        for template in templates:
            for fill, answer in items:
                self.add(template.format(x=fill), answer, category, language)


def _p(word: str) -> str:
    return word if word.endswith((".", "!", "?")) else word + "."


# ----------------------------------------------------------------------------------------------- EN
_SAY_TEMPLATES = ("Say {x}.", "Reply with {x}.", "Respond {x}.", "Answer {x}.", "Output {x}.", "Just say {x}.",
                  "One word: {x}.", "Single word: {x}.", "Brief: {x}.", "Short answer: {x}.")
_KEY_WORDS = ("hello", "yes", "no", "ok", "hi", "bye", "thanks", "done", "ready", "stop", "start", "true",
              "false", "error", "success")
_MORE_WORDS = ("good", "fine", "great", "sure", "maybe", "never", "always", "now", "later", "today", "here",
               "there", "up", "down", "left", "right", "open", "close", "on", "off", "wait")
_FRUIT_WORDS = ("apple", "banana", "cat", "dog", "red", "blue")
_SAY_FULL_EXTRA = ("please", "welcome", "correct", "wrong", "valid", "invalid", "pass", "fail", "next", "back",
                   "first", "last", "begin", "end", "enter", "exit", "load", "save", "send", "run", "test",
                   "check", "confirm", "cancel", "accept", "deny", "allow", "block", "online", "offline",
                   "active", "idle", "busy", "free", "empty", "full", "high", "low", "fast", "slow", "new",
                   "old", "hot", "cold", "big", "small", "one", "two", "three", "four", "five", "six", "seven",
                   "eight", "nine", "ten", "zero", "sun", "moon", "water")


def _say_words_minimal() -> List[str]:
    words = []
    for w in _KEY_WORDS:
        words += [w, w.title(), w.upper()]
    for w in _MORE_WORDS:
        words += [w, w.title()]
    for w in _FRUIT_WORDS:
        words += [w, w.title(), w.upper()]
    return words + ["OK", "42", "7"]


_YES_FACTS = ("Is water wet?", "Is the sun hot?", "Is ice cold?", "Is the sky blue?", "Do birds fly?",
              "Do fish swim?", "Is grass green?", "Is snow white?", "Is fire hot?", "Can dogs bark?",
              "Is one less than two?", "Is ten more than five?", "Do cats meow?", "Is the earth round?",
              "Is sugar sweet?", "Is a circle round?", "Do trees have leaves?", "Is rain wet?",
              "Does the sun rise in the east?", "Are lemons sour?")
_NO_FACTS = ("Is fire cold?", "Is ice hot?", "Can fish fly?", "Is the sun cold?", "Do cats bark?",
             "Is snow black?", "Is two less than one?", "Can dogs fly?", "Is water dry?", "Is the moon a star?",
             "Do fish walk?", "Is sugar salty?", "Is grass blue?", "Can a stone swim?", "Is night bright?",
             "Is five more than ten?")
_YES_FACTS_FULL = ("Is the ocean salty?", "Do bees make honey?", "Is a week seven days?", "Is milk white?",
                   "Can birds sing?", "Is a year twelve months?", "Do cows give milk?", "Is Paris in France?",
                   "Is Berlin in Germany?", "Is three an odd number?", "Is four an even number?",
                   "Do plants need water?", "Is gold a metal?", "Can people walk?", "Is a triangle a shape?")
_NO_FACTS_FULL = ("Is a week ten days?", "Is Paris in Italy?", "Do cows fly?", "Is three an even number?",
                  "Is gold a gas?", "Can trees talk?", "Is a year five months?", "Do rocks eat?",
                  "Is the sea made of sand?", "Do birds have wheels?", "Is ice warm?", "Is Berlin in Spain?",
                  "Can cars swim?")

_GREETINGS = (("Hello!", "Hello!"), ("Hi!", "Hi!"), ("Good morning!", "Good morning!"),
              ("Good evening!", "Good evening!"), ("Good night!", "Good night!"), ("How are you?", "Good."),
              ("Hey!", "Hey!"), ("Bye!", "Bye!"), ("Goodbye!", "Goodbye!"), ("Thanks!", "You're welcome."),
              ("Thank you!", "You're welcome."), ("See you!", "See you!"))
_GREETINGS_FULL = (("Good afternoon!", "Good afternoon!"), ("Welcome!", "Thank you."), ("Howdy!", "Howdy!"),
                   ("Nice to meet you!", "Nice to meet you!"), ("See you later!", "See you later!"))
_STATUS = (("Status?", "OK."), ("Ready?", "Ready."), ("Are you ready?", "Yes."), ("Who are you?", "MyPT."),
           ("What is your name?", "MyPT."), ("Your name?", "MyPT."), ("Are you there?", "Yes."),
           ("Ping.", "Pong."), ("Are you online?", "Yes."), ("Working?", "Yes."), ("All good?", "Yes."),
           ("System status?", "OK."), ("Are you awake?", "Yes."), ("Can you hear me?", "Yes."))
_STATUS_FULL = (("Online?", "Yes."), ("Health check.", "OK."), ("Are you a bot?", "Yes."), ("Alive?", "Yes."),
                ("Any errors?", "No."), ("Is everything fine?", "Yes."))
_POLITE = (("Please help.", "Sure."), ("Sorry.", "No problem."), ("Excuse me.", "Yes?"),
           ("Thank you very much!", "You're welcome."), ("Can you help me?", "Yes."))
_POLITE_FULL = (("Much appreciated.", "You're welcome."), ("My apologies.", "No problem."),
                ("Could you help?", "Yes."), ("Please wait.", "OK."), ("One moment please.", "OK."))
_COLORS = ("red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray",
           "cyan", "magenta", "violet", "indigo", "beige", "navy", "teal")
_COLORS_FULL_EXTRA = ("gold", "maroon", "olive", "lime", "coral", "turquoise")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_OPPOSITES = (("hot", "cold"), ("big", "small"), ("up", "down"), ("yes", "no"), ("day", "night"),
              ("fast", "slow"), ("open", "closed"), ("left", "right"), ("high", "low"), ("old", "new"),
              ("good", "bad"), ("happy", "sad"), ("light", "dark"), ("full", "empty"), ("win", "lose"),
              ("start", "stop"))
_OPPOSITES_FULL_EXTRA = (("true", "false"), ("in", "out"), ("on", "off"), ("hard", "soft"), ("long", "short"),
                         ("wet", "dry"), ("early", "late"), ("first", "last"), ("near", "far"), ("rich", "poor"),
                         ("strong", "weak"), ("loud", "quiet"), ("thick", "thin"), ("clean", "dirty"),
                         ("push", "pull"), ("buy", "sell"))
#: Country -> capital pairs of the capital questions (English; also asked by data/paraphrases.py).
CAPITALS = (("Germany", "Berlin"), ("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"),
             ("England", "London"), ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"),
             ("Canada", "Ottawa"), ("Austria", "Vienna"), ("Switzerland", "Bern"), ("Poland", "Warsaw"),
             ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Sweden", "Stockholm"), ("Norway", "Oslo"),
             ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Egypt", "Cairo"),
             ("India", "New Delhi"), ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"), ("Peru", "Lima"),
             ("Mexico", "Mexico City"), ("Australia", "Canberra"), ("Turkey", "Ankara"), ("Hungary", "Budapest"),
             ("Czechia", "Prague"), ("Belgium", "Brussels"), ("Netherlands", "Amsterdam"), ("Kenya", "Nairobi"),
             ("Thailand", "Bangkok"), ("South Korea", "Seoul"), ("Chile", "Santiago"))
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_ANIMAL_SOUNDS = (("dog", "Woof."), ("cat", "Meow."), ("cow", "Moo."), ("duck", "Quack."), ("sheep", "Baa."),
                  ("pig", "Oink."), ("horse", "Neigh."), ("lion", "Roar."), ("owl", "Hoot."), ("snake", "Hiss."),
                  ("bee", "Buzz."), ("frog", "Ribbit."), ("rooster", "Cock-a-doodle-doo."), ("mouse", "Squeak."),
                  ("goat", "Bleat."), ("wolf", "Howl."), ("crow", "Caw."), ("dove", "Coo."), ("donkey", "Hee-haw."))
_DIRECTIONS = (("north", "south"), ("south", "north"), ("east", "west"), ("west", "east"), ("up", "down"),
               ("down", "up"), ("left", "right"), ("right", "left"), ("forward", "backward"), ("backward", "forward"),
               ("inside", "outside"), ("outside", "inside"), ("above", "below"), ("below", "above"),
               ("front", "back"), ("back", "front"), ("northeast", "southwest"), ("southwest", "northeast"),
               ("northwest", "southeast"), ("southeast", "northwest"))
_FILE_EXT = (("Python", ".py"), ("JavaScript", ".js"), ("TypeScript", ".ts"), ("Java", ".java"), ("C", ".c"),
             ("C++", ".cpp"), ("Rust", ".rs"), ("Go", ".go"), ("Ruby", ".rb"), ("PHP", ".php"), ("HTML", ".html"),
             ("CSS", ".css"), ("JSON", ".json"), ("YAML", ".yaml"), ("Markdown", ".md"), ("text", ".txt"),
             ("CSV", ".csv"), ("XML", ".xml"), ("shell script", ".sh"), ("SQL", ".sql"), ("Kotlin", ".kt"),
             ("Swift", ".swift"), ("Perl", ".pl"), ("Lua", ".lua"), ("PDF", ".pdf"), ("PNG image", ".png"))
_SYMBOLS = (("plus", "+"), ("minus", "-"), ("equals", "="), ("asterisk", "*"), ("slash", "/"),
            ("backslash", "\\"), ("percent", "%"), ("dollar", "$"), ("hash", "#"), ("at sign", "@"),
            ("ampersand", "&"), ("exclamation mark", "!"), ("question mark", "?"), ("colon", ":"),
            ("semicolon", ";"), ("comma", ","), ("period", "."), ("underscore", "_"), ("pipe", "|"),
            ("tilde", "~"), ("caret", "^"), ("open parenthesis", "("), ("close parenthesis", ")"),
            ("open bracket", "["), ("close bracket", "]"), ("open brace", "{"), ("close brace", "}"),
            ("less than", "<"), ("greater than", ">"), ("double quote", '"'), ("single quote", "'"),
            ("backtick", "`"))
_UNITS = (("kilometer", "km"), ("meter", "m"), ("centimeter", "cm"), ("millimeter", "mm"), ("kilogram", "kg"),
          ("gram", "g"), ("liter", "l"), ("milliliter", "ml"), ("second", "s"), ("minute", "min"), ("hour", "h"),
          ("kilobyte", "KB"), ("megabyte", "MB"), ("gigabyte", "GB"))
_CODE = {
    "print": (("Python", "print()"), ("JavaScript", "console.log()"), ("Java", "System.out.println()"),
              ("C", "printf()"), ("Go", "fmt.Println()"), ("Rust", "println!()"), ("Ruby", "puts"),
              ("PHP", "echo"), ("Bash", "echo"), ("C++", "std::cout"), ("Swift", "print()"), ("Kotlin", "println()")),
    "comment": (("Python", "#"), ("JavaScript", "//"), ("Java", "//"), ("C", "//"), ("Go", "//"), ("Rust", "//"),
                ("Ruby", "#"), ("Bash", "#"), ("SQL", "--"), ("Lua", "--"), ("HTML", "<!-- -->"), ("CSS", "/* */"),
                ("YAML", "#"), ("Haskell", "--"), ("C++", "//")),
    "null": (("Python", "None"), ("JavaScript", "null"), ("Java", "null"), ("Go", "nil"), ("Ruby", "nil"),
             ("Rust", "None"), ("Swift", "nil"), ("Kotlin", "null"), ("PHP", "null"), ("C#", "null"), ("Lua", "nil")),
    "true": (("Python", "True"), ("JavaScript", "true"), ("Java", "true"), ("Go", "true"), ("Rust", "true"),
             ("C", "1"), ("Ruby", "true"), ("PHP", "true"), ("Swift", "true"), ("JSON", "true")),
    "function": (("Python", "def"), ("JavaScript", "function"), ("Go", "func"), ("Rust", "fn"), ("Kotlin", "fun"),
                 ("Swift", "func"), ("Ruby", "def"), ("PHP", "function"), ("Lua", "function"), ("Scala", "def")),
}
_CODE_TEMPLATES = {
    "print": ("How do you print in {x}?", "Print function in {x}?", "Output function in {x}?"),
    "comment": ("Comment symbol in {x}?", "How do you start a comment in {x}?"),
    "null": ("Null value in {x}?", "What is null called in {x}?"),
    "true": ("Boolean true in {x}?", "How is true written in {x}?"),
    "function": ("Function keyword in {x}?", "How do you define a function in {x}?"),
}
_HTTP = (("Which HTTP method reads data?", "GET"), ("Which HTTP method creates data?", "POST"),
         ("Which HTTP method replaces data?", "PUT"), ("Which HTTP method deletes data?", "DELETE"),
         ("Which HTTP method updates part of data?", "PATCH"), ("HTTP status for OK?", "200"),
         ("HTTP status for Not Found?", "404"), ("HTTP status for Created?", "201"),
         ("HTTP status for Server Error?", "500"), ("HTTP status for Unauthorized?", "401"),
         ("HTTP status for Forbidden?", "403"), ("HTTP status for Bad Request?", "400"),
         ("HTTP status for Moved Permanently?", "301"), ("HTTP status for No Content?", "204"))
_GIT = (("Git command to download updates?", "git pull"), ("Git command to upload commits?", "git push"),
        ("Git command to save changes?", "git commit"), ("Git command to stage files?", "git add"),
        ("Git command to copy a repository?", "git clone"), ("Git command to show changes?", "git diff"),
        ("Git command to see the state?", "git status"), ("Git command to see history?", "git log"),
        ("Git command to create a repository?", "git init"), ("Git command to switch branches?", "git checkout"),
        ("Git command to combine branches?", "git merge"), ("Git command to fetch without merging?", "git fetch"))
_CLI = (("Command to list files?", "ls"), ("Command to change directory?", "cd"),
        ("Command to print the working directory?", "pwd"), ("Command to make a directory?", "mkdir"),
        ("Command to remove a file?", "rm"), ("Command to copy a file?", "cp"), ("Command to move a file?", "mv"),
        ("Command to show a file?", "cat"), ("Command to search text?", "grep"), ("Command to create an empty file?", "touch"),
        ("Command to clear the screen?", "clear"), ("Command to show running processes?", "ps"),
        ("Command to change permissions?", "chmod"), ("Command to show disk usage?", "df"),
        ("Command to run as admin?", "sudo"))
_DATA_TYPES = (("42", "int"), ("3.14", "float"), ('"hello"', "str"), ("True", "bool"), ("[1, 2]", "list"),
               ("(1, 2)", "tuple"), ('{"a": 1}', "dict"), ("None", "NoneType"), ("{1, 2}", "set"),
               ("b'abc'", "bytes"), ("1j", "complex"), ("-7", "int"), ("0.5", "float"), ("False", "bool"))
_COMPARISONS = (("Is 5 greater than 3?", "Yes."), ("Is 2 greater than 9?", "No."), ("Is 7 less than 10?", "Yes."),
                ("Is 12 less than 4?", "No."), ("Is 6 equal to 6?", "Yes."), ("Is 8 equal to 3?", "No."),
                ("Which is bigger, 4 or 9?", "9."), ("Which is bigger, 15 or 11?", "15."),
                ("Which is smaller, 3 or 8?", "3."), ("Which is smaller, 20 or 14?", "14."),
                ("Is 100 greater than 99?", "Yes."), ("Is 0 greater than 1?", "No."),
                ("Is 50 less than 500?", "Yes."), ("Is 1000 less than 10?", "No."), ("Larger: 7 or 70?", "70."),
                ("Smaller: 33 or 3?", "3."), ("Is 9 an odd number?", "Yes."), ("Is 9 an even number?", "No."),
                ("Is 10 an even number?", "Yes."), ("Is 10 an odd number?", "No."))


def _english(pairs: _Pairs, full: bool) -> None:
    words = (_say_words_minimal() if not full
             else list(dict.fromkeys([w for w in _KEY_WORDS + _MORE_WORDS + _FRUIT_WORDS] + list(_SAY_FULL_EXTRA)
                                     + ["OK", "ID-008", "id-903"])))
    pairs.many(_SAY_TEMPLATES, [(w, _p(w)) for w in words], "say", "en")
    pairs.many(("{x}",), [(q, "Yes.") for q in _YES_FACTS + (_YES_FACTS_FULL if full else ())], "yes_no", "en")
    pairs.many(("{x}",), [(q, "No.") for q in _NO_FACTS + (_NO_FACTS_FULL if full else ())], "yes_no", "en")
    pairs.many(("{x}",), _GREETINGS + (_GREETINGS_FULL if full else ()), "greeting", "en")
    pairs.many(("{x}",), _STATUS + (_STATUS_FULL if full else ()), "status", "en")
    pairs.many(("{x}",), _POLITE + (_POLITE_FULL if full else ()), "polite", "en")
    colors = _COLORS + (_COLORS_FULL_EXTRA if full else ())
    color_templates = ("Color: {x}.", "Name the color {x}.", "Which color is {x}?") + (("Pick the color {x}.",) if full else ())
    pairs.many(color_templates, [(c, _p(c.title())) for c in colors], "color", "en")
    day_templates = ("Day: {x}.", "Name the day {x}.", "What day is {x}?")
    pairs.many(day_templates, [(d, _p(d)) for d in _DAYS], "day", "en")
    pairs.many(("Say {x}.", "Number: {x}.", "Reply with {x}."), [(str(n), f"{n}.") for n in range(21)], "number", "en")
    pairs.many(("Opposite of {x}?",), [(a, _p(b.title())) for a, b in _OPPOSITES[:16]], "opposite", "en")
    if not full:
        return
    for i, day in enumerate(_DAYS):
        pairs.many(("What day comes after {x}?", "Day after {x}?"), [(day, _p(_DAYS[(i + 1) % 7]))], "day", "en")
        pairs.add(f"Day number {i + 1}?", _p(day), "day", "en")
    for i, month in enumerate(_MONTHS):
        pairs.many(("Month: {x}.", "Name the month {x}."), [(month, _p(month))], "month", "en")
        pairs.many(("What month is number {x}?", "Month {x}?"), [(str(i + 1), _p(month))], "month", "en")
        pairs.add(f"Month after {month}?", _p(_MONTHS[(i + 1) % 12]), "month", "en")
    pairs.many(("Capital of {x}?", "What is the capital of {x}?", "{x} capital?"),
               [(c, _p(city)) for c, city in CAPITALS], "capital", "en")
    pairs.many(("Opposite of {x}?", "What is the opposite of {x}?", "Antonym of {x}?"),
               [(a, _p(b.title())) for a, b in _OPPOSITES + _OPPOSITES_FULL_EXTRA], "opposite", "en")
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    for i, letter in enumerate(letters):
        pairs.add(f"Letter number {i + 1}?", _p(letter), "letter", "en")
        pairs.add(f"Say the letter {letter}.", _p(letter), "letter", "en")
        pairs.add(f"Lowercase of {letter}?", _p(letter.lower()), "letter", "en")
        pairs.add(f"Uppercase of {letter.lower()}?", _p(letter), "letter", "en")
        if i < 25:
            pairs.add(f"Letter after {letter}?", _p(letters[i + 1]), "letter", "en")
        if i > 0:
            pairs.add(f"Letter before {letter}?", _p(letters[i - 1]), "letter", "en")
    for n, word in enumerate(_NUMBER_WORDS):
        pairs.many(("Write {x} as a word.", "Spell the number {x}."), [(str(n), _p(word.title()))], "number_word", "en")
        pairs.many(("Write {x} as a digit.", "What number is {x}?"), [(word, f"{n}.")], "number_word", "en")
    pairs.many(("What sound does a {x} make?", "A {x} says?", "Sound of a {x}?"), _ANIMAL_SOUNDS, "animal_sound", "en")
    pairs.many(("Opposite direction of {x}?", "Reverse of {x}?", "What is the opposite direction of {x}?"),
               [(a, _p(b.title())) for a, b in _DIRECTIONS], "direction", "en")
    pairs.many(("File extension for {x}?", "{x} file extension?", "Extension of a {x} file?"), _FILE_EXT,
               "file_extension", "en")
    pairs.many(("Symbol for {x}?", "What is the {x} symbol?"), _SYMBOLS, "symbol", "en")
    pairs.many(("Abbreviation for {x}?", "Unit symbol for {x}?"), _UNITS, "unit", "en")
    for kind, items in _CODE.items():
        pairs.many(_CODE_TEMPLATES[kind], items, f"code_{kind}", "en")
    pairs.many(("{x}",), _HTTP, "http", "en")
    pairs.many(("{x}",), _GIT, "git", "en")
    pairs.many(("{x}",), _CLI, "cli", "en")
    pairs.many(("Python type of {x}?", "What type is {x} in Python?"), _DATA_TYPES, "data_type", "en")
    pairs.many(("{x}",), _COMPARISONS, "comparison", "en")


# ----------------------------------------------------------------------------------------------- DE
_SAY_DE_WORDS_MIN = ("Hallo", "Ja", "Nein", "Danke", "Bitte", "Tschuess", "Gut", "Fertig", "Bereit", "Stopp",
                     "Start", "Fehler", "Erfolg", "Wahr", "Falsch", "Apfel", "Hund", "Katze", "Rot", "Blau",
                     "Sonne", "Wasser")
_SAY_DE_WORDS_FULL_EXTRA = ("Haus", "Baum", "Blume", "Buch", "Tisch", "Stuhl", "Brot", "Milch", "Mond", "Stern",
                            "Gruen", "Gelb", "Schwarz", "Weiss", "Eins", "Zwei", "Drei", "Vier", "Fuenf", "Morgen",
                            "Abend", "Nacht", "Jetzt")
_QA_DE = (("Wie geht es dir?", "Gut."), ("Wer bist du?", "MyPT."), ("Wie heisst du?", "MyPT."),
          ("Bist du bereit?", "Ja."), ("Guten Morgen!", "Guten Morgen!"), ("Guten Abend!", "Guten Abend!"),
          ("Gute Nacht!", "Gute Nacht!"), ("Danke!", "Bitte."), ("Hallo!", "Hallo!"), ("Tschuess!", "Tschuess!"),
          ("Alles gut?", "Ja."), ("Bist du da?", "Ja."))
_QA_DE_FULL = (("Status bitte.", "OK."), ("Funktionierst du?", "Ja."), ("Bist du online?", "Ja."),
               ("Gibt es Fehler?", "Nein."), ("Guten Tag!", "Guten Tag!"), ("Vielen Dank!", "Gern geschehen."),
               ("Entschuldigung.", "Kein Problem."), ("Kannst du helfen?", "Ja."), ("Bitte warten.", "OK."))
_YES_DE = ("Ist Wasser nass?", "Ist die Sonne heiss?", "Ist Eis kalt?", "Ist der Himmel blau?", "Koennen Voegel fliegen?",
           "Ist Gras gruen?", "Ist Schnee weiss?", "Ist Zucker suess?", "Ist Berlin in Deutschland?",
           "Hat eine Woche sieben Tage?", "Schwimmen Fische?", "Ist Feuer heiss?")
_NO_DE = ("Ist Feuer kalt?", "Ist Eis heiss?", "Koennen Fische fliegen?", "Ist Schnee schwarz?", "Bellen Katzen?",
          "Ist Zucker salzig?", "Ist Berlin in Spanien?", "Hat eine Woche zehn Tage?", "Ist die Nacht hell?",
          "Koennen Steine schwimmen?")
_CAPITALS_DE = (("Deutschland", "Berlin"), ("Frankreich", "Paris"), ("Italien", "Rom"), ("Spanien", "Madrid"),
                ("Oesterreich", "Wien"), ("die Schweiz", "Bern"), ("Polen", "Warschau"), ("Griechenland", "Athen"),
                ("Portugal", "Lissabon"), ("Schweden", "Stockholm"), ("Norwegen", "Oslo"), ("Daenemark", "Kopenhagen"),
                ("Japan", "Tokio"), ("China", "Peking"), ("Russland", "Moskau"), ("Aegypten", "Kairo"),
                ("England", "London"), ("Irland", "Dublin"), ("Finnland", "Helsinki"), ("Ungarn", "Budapest"),
                ("Tschechien", "Prag"), ("Belgien", "Bruessel"), ("die Niederlande", "Amsterdam"),
                ("die Tuerkei", "Ankara"), ("Kanada", "Ottawa"))
_COLORS_DE = ("Rot", "Blau", "Gruen", "Gelb", "Orange", "Lila", "Rosa", "Braun", "Schwarz", "Weiss", "Grau",
              "Tuerkis", "Violett", "Beige", "Gold", "Silber")
_DAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_MONTHS_DE = ("Januar", "Februar", "Maerz", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
              "November", "Dezember")
_OPPOSITES_DE = (("heiss", "kalt"), ("gross", "klein"), ("oben", "unten"), ("ja", "nein"), ("Tag", "Nacht"),
                 ("schnell", "langsam"), ("offen", "geschlossen"), ("links", "rechts"), ("hoch", "tief"),
                 ("alt", "neu"), ("gut", "schlecht"), ("hell", "dunkel"), ("voll", "leer"), ("nass", "trocken"),
                 ("laut", "leise"), ("stark", "schwach"))
_ANIMAL_SOUNDS_DE = (("Hund", "Wuff."), ("Katze", "Miau."), ("Kuh", "Muh."), ("Ente", "Quak."), ("Schaf", "Maeh."),
                     ("Schwein", "Oink."), ("Hahn", "Kikeriki."), ("Eule", "Uhu."), ("Biene", "Summ."),
                     ("Frosch", "Quak quak."), ("Esel", "I-aah."), ("Loewe", "Roar."))
_NUMBERS_DE = ("null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun", "zehn", "elf",
               "zwoelf", "dreizehn", "vierzehn", "fuenfzehn", "sechzehn", "siebzehn", "achtzehn", "neunzehn", "zwanzig")
_COMPARISONS_DE = (("Ist 5 groesser als 3?", "Ja."), ("Ist 2 groesser als 9?", "Nein."), ("Ist 7 kleiner als 10?", "Ja."),
                   ("Ist 12 kleiner als 4?", "Nein."), ("Was ist groesser, 4 oder 9?", "9."),
                   ("Was ist kleiner, 3 oder 8?", "3."), ("Ist 6 gleich 6?", "Ja."), ("Ist 8 gleich 3?", "Nein."),
                   ("Ist 10 gerade?", "Ja."), ("Ist 9 gerade?", "Nein."))


def _german(pairs: _Pairs, full: bool) -> None:
    say_templates = ("Sag {x}.", "Sage {x}.", "Antworte {x}.")
    words = _SAY_DE_WORDS_MIN
    if full:
        say_templates += ("Antworte mit {x}.", "Gib aus: {x}.", "Nur ein Wort: {x}.", "Kurz: {x}.")
        words += _SAY_DE_WORDS_FULL_EXTRA
    pairs.many(say_templates, [(w, _p(w)) for w in words], "say_de", "de")
    pairs.many(("{x}",), _QA_DE + (_QA_DE_FULL if full else ()), "qa_de", "de")
    if not full:
        return
    pairs.many(("{x}",), [(q, "Ja.") for q in _YES_DE] + [(q, "Nein.") for q in _NO_DE], "yes_no_de", "de")
    pairs.many(("Hauptstadt von {x}?", "Was ist die Hauptstadt von {x}?", "Wie heisst die Hauptstadt von {x}?"),
               [(c, _p(city)) for c, city in _CAPITALS_DE], "capital_de", "de")
    pairs.many(("Farbe: {x}.", "Nenne die Farbe {x}.", "Welche Farbe ist {x}?"), [(c, _p(c)) for c in _COLORS_DE],
               "color_de", "de")
    for i, day in enumerate(_DAYS_DE):
        pairs.many(("Tag: {x}.", "Welcher Tag ist {x}?"), [(day, _p(day))], "day_de", "de")
        pairs.many(("Welcher Tag kommt nach {x}?", "Tag nach {x}?"), [(day, _p(_DAYS_DE[(i + 1) % 7]))], "day_de", "de")
        pairs.add(f"Wochentag Nummer {i + 1}?", _p(day), "day_de", "de")
    for i, month in enumerate(_MONTHS_DE):
        pairs.add(f"Monat: {month}.", _p(month), "month_de", "de")
        pairs.add(f"Welcher Monat ist Nummer {i + 1}?", _p(month), "month_de", "de")
        pairs.add(f"Monat nach {month}?", _p(_MONTHS_DE[(i + 1) % 12]), "month_de", "de")
    pairs.many(("Gegenteil von {x}?", "Was ist das Gegenteil von {x}?"),
               [(a, _p(b.capitalize())) for a, b in _OPPOSITES_DE], "opposite_de", "de")
    pairs.many(("Welches Geraeusch macht ein {x}?", "Was sagt ein {x}?"),
               [(a, s) for a, s in _ANIMAL_SOUNDS_DE], "animal_sound_de", "de")
    for n, word in enumerate(_NUMBERS_DE):
        pairs.many(("Sag die Zahl {x}.", "Zahl: {x}."), [(str(n), f"{n}.")], "number_de", "de")
        pairs.add(f"Schreibe {n} als Wort.", _p(word.capitalize()), "number_de", "de")
    pairs.many(("{x}",), _COMPARISONS_DE, "comparison_de", "de")


# ---------------------------------------------------------------------------------------------- math
def _math_en(pairs: _Pairs, full: bool) -> None:
    if full:
        add_t = ("What is {a} + {b}?", "{a} plus {b}?", "{a} + {b}?", "Add {a} and {b}.")
        sub_t = ("What is {a} - {b}?", "{a} minus {b}?", "{a} - {b}?", "Subtract {b} from {a}.")
        mul_t = ("What is {a} × {b}?", "{a} times {b}?", "{a} * {b}?", "Multiply {a} by {b}.")
        div_t = ("What is {a} ÷ {b}?", "{a} divided by {b}?", "{a} / {b}?")
        add_r, sub_r, mul_r, div_r = (50, 20), (50, 20), (15, 15), (120, 15)
        sub_lo = 0
    else:
        add_t, sub_t = ("What is {a} + {b}?", "{a} plus {b}?"), ("What is {a} - {b}?", "{a} minus {b}?")
        mul_t, div_t = ("What is {a} × {b}?", "{a} times {b}?"), ("What is {a} ÷ {b}?",)
        add_r, sub_r, mul_r, div_r = (20, 10), (20, 10), (12, 12), (50, 10)
        sub_lo = 1
    _arith(pairs, add_t, sub_t, mul_t, div_t, add_r, sub_r, mul_r, div_r, sub_lo, "en")


def _math_de(pairs: _Pairs) -> None:
    _arith(pairs, ("Was ist {a} + {b}?",), ("Was ist {a} - {b}?",), ("Was ist {a} mal {b}?",),
           ("Was ist {a} geteilt durch {b}?",), (20, 10), (20, 10), (12, 12), (50, 10), 1, "de")


def _arith(pairs, add_t, sub_t, mul_t, div_t, add_r, sub_r, mul_r, div_r, sub_lo, language) -> None:
    suffix = "" if language == "en" else "_de"
    for t in add_t:
        for a in range(add_r[0] + 1):
            for b in range(add_r[1] + 1):
                pairs.add(t.format(a=a, b=b), f"{a + b}.", "math_add" + suffix, language)
    for t in sub_t:
        for a in range(sub_lo, sub_r[0] + 1):
            for b in range(min(a, sub_r[1]) + 1):  # results stay >= 0
                pairs.add(t.format(a=a, b=b), f"{a - b}.", "math_sub" + suffix, language)
    for t in mul_t:
        for a in range(mul_r[0] + 1):
            for b in range(mul_r[1] + 1):
                pairs.add(t.format(a=a, b=b), f"{a * b}.", "math_mul" + suffix, language)
    for t in div_t:
        for a in range(div_r[0] + 1):
            for b in range(1, div_r[1] + 1):
                if a % b == 0:
                    pairs.add(t.format(a=a, b=b), f"{a // b}.", "math_div" + suffix, language)


def format_lock(mode: str = "full", math: str = "include", seed: int = 42,
                system_prompt: Optional[str] = DEFAULT_SYSTEM_PROMPT) -> datasets.Dataset:
    """Format-lock episodes.

    ``mode``: "full" (all categories, English and German) or "minimal" (SAY words, facts, greetings,
    status, colours, days, numbers, a little German). ``math``: "include" (full arithmetic; German
    math too in full mode), "minimal" (small ranges), "exclude" (no math at all), "only" (only the
    full English and German arithmetic; ``mode`` is ignored, as in the original).
    """
    if mode not in MODES:
        raise MyPTInputError(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})", field="mode")
    if math not in MATH_MODES:
        raise MyPTInputError(f"unknown math mode {math!r} (expected one of {', '.join(MATH_MODES)})", field="math")
    full = mode == "full"
    pairs = _Pairs()
    if math == "only":
        _math_en(pairs, full=True)
        _math_de(pairs)
    else:
        _english(pairs, full)
        _german(pairs, full)
        if math in ("include", "minimal"):
            _math_en(pairs, full=(math == "include"))
            if full:
                _math_de(pairs)
    rows = [(q, a, c, lang) for q, (a, c, lang) in pairs.rows.items()]
    random.Random(seed).shuffle(rows)
    episodes = [
        make_episode(q, a, system=system_prompt, source="format_lock", episode_id=f"format_lock_{i:05d}",
                     category=c, language=lang, expected=a)
        for i, (q, a, c, lang) in enumerate(rows)
    ]
    return datasets.Dataset.from_list(episodes, features=EPISODE_FEATURES)


__all__ = ["MODES", "MATH_MODES", "CAPITALS", "format_lock"]
