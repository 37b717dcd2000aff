"""How ``corpus.txt`` (the embedded tokenizer's training text) was made. Run ``python make_corpus.py`` to regenerate it.

Deterministic (fixed seed): Phase 3a-style format-lock, echo, operator, anti-echo and math lines in English and
German, plus short sentences, code, units, symbols and non-ASCII text. Changing the output changes the embedded
tokenizer (its ids and fingerprint), so prepared datasets and trained models must be rebuilt afterwards.
Not imported by the package.
"""
import os
import random
rng = random.Random(20260301)
L = []
en_words = """hello yes no ok hi bye thanks done ready stop start true false error success apple banana cat dog red blue green
yellow orange purple pink brown black white gray tiger window house tree river mountain water fire earth air sun moon star
book table chair door car train plane boat city country world people time year day week month hour minute second morning
evening night today tomorrow yesterday good bad big small old new long short high low fast slow hot cold warm open close
first last next previous left right up down north south east west answer question word phrase sentence number letter
name color music light dark happy sad friend family school work home garden kitchen market street road bridge forest
ocean island desert field flower grass stone paper pencil computer phone screen keyboard mouse file folder data code
program function value list array string integer float boolean null none empty full zero one two three four five six
seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand million bird fish horse cow sheep pig duck
lion bear wolf fox rabbit snake frog bee apple orange lemon grape cherry bread cheese milk coffee tea sugar salt rain snow
wind cloud storm summer winter spring autumn monday tuesday wednesday thursday friday saturday sunday january february
march april may june july august september october november december echo copy wrap extract repeat say output write
return print reply respond type give brackets quotes text content inside only exactly verbatim unknown valid real meaning
translate german english define capital opposite antonym inverse status online offline later soon never always maybe
zenith anchor balloon candle dragon engine falcon glacier harbor igloo jungle kettle lantern magnet needle oyster parrot
quartz rocket saddle tunnel umbrella violin walnut xylophone yacht zebra""".split()
de_words = """hallo ja nein danke bitte tschuess gut schlecht gross klein alt neu Apfel Banane Katze Hund rot blau gruen gelb
schwarz weiss Haus Baum Fluss Berg Wasser Feuer Erde Luft Sonne Mond Stern Buch Tisch Stuhl Tuer Auto Zug Stadt Land Welt
Zeit Jahr Tag Woche Monat Stunde Morgen Abend Nacht heute morgen gestern schnell langsam heiss kalt warm offen zu erste
letzte links rechts oben unten Norden Sueden Osten Westen Antwort Frage Wort Satz Zahl Buchstabe Name Farbe Musik Licht
Freund Familie Schule Arbeit Garten Kueche Strasse Bruecke Wald Meer Insel Blume Stein Papier Montag Dienstag Mittwoch
Donnerstag Freitag Samstag Sonntag Januar Februar Maerz April Mai Juni Juli August Oktober Dezember eins zwei drei vier
fuenf sechs sieben acht neun zehn Brot Milch Kaffee Regen Schnee Wind Sommer Winter Fruehling Herbst Vogel Fisch Pferd
Kuh Loewe Baer Wolf Fuchs Hase Biene Übung Größe Straße Mädchen Bäcker Käse Tür Brücke Grüße Müller schön über für""".split()
syll = """ba be bi bo bu bla ble bli blo blu cra cre cri cro cru da de di do du fla fle fli flo ga ge gi go gra gre gri ka ke ki
ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu tra tre tri
tro tru va ve vi vo za ze zi zo zel zon tion ing ness ment an en in on un ch sh th x z q k v w sync""".split()
en_say = ["Say {w}.", "Reply with {w}.", "Respond {w}.", "Answer {w}.", "Output {w}.", "Just say {w}.", "One word: {w}.",
          "Single word: {w}.", "Brief: {w}.", "Short answer: {w}."]
de_say = ["Sag {w}.", "Sage {w}.", "Antworte {w}.", "Antworte mit {w}.", "Gib aus: {w}.", "Nur ein Wort: {w}.", "Kurz: {w}."]
echo_en = """Say: | Say the word: | Say the phrase: | Say exactly: | Please say: | Just say: | Repeat: | Repeat after me: | Repeat this: | Repeat exactly: | Please repeat: | Please repeat exactly: | Echo: | Echo this: | Output: | Output exactly: | Output the following: | Write: | Write exactly: | Write out: | Type: | Type out: | Respond with: | Respond with only: | Reply with: | Reply with just: | Give me: | Return: | Print:""".split(" | ")
echo_de = """Sage: | Sag: | Sag das Wort: | Sag genau: | Bitte sage: | Bitte sag: | Wiederhole: | Wiederhole dies: | Wiederhole genau: | Bitte wiederhole: | Bitte wiederhole genau: | Gib aus: | Gib genau aus: | Schreibe: | Schreibe genau: | Antworte mit: | Antworte nur mit:""".split(" | ")
ops = ["Repeat exactly: `X`", "Copy: `X`", "Echo `X`", "Say this back: 'X'", "Output: 'X'", "Just say 'X'",
       "Repeat exactly |X|", "Copy |X|", "Echo: {{X}}", "Say back {{X}}", "Wrap in brackets: `X`", "Surround with []: `X`",
       "Bracket `X`", "Put square brackets around: 'X'", "Add brackets around 'X'", "Wrap in brackets |X|", "Add [] to |X|",
       "Enclose in []: {{X}}", 'Return only the text between quotes: "X"', 'Extract the quoted part: "X"',
       'Get what\'s in quotes: "X"', 'What is inside "X"?', 'Extract "X"', 'Return the content of "X"', 'Pull out "X"',
       "Wiederhole genau: `X`", "Sage das zurueck: 'X'", "Kopiere: |X|", "Gib aus: `X`", "Setze in Klammern: `X`",
       "Umgib mit []: 'X'", "Klammere: |X|", 'Gib nur den Text in Anfuehrungszeichen aus: "X"', 'Extrahiere das Zitat: "X"']
anti = ['What is "X"?', 'What does "X" mean?', 'Is "X" a real word?', 'Does "X" have a meaning?', 'Translate "X" to German.',
        'Define "X".', 'Was bedeutet "X"?', 'Ist "X" ein echtes Wort?', 'Hat "X" eine Bedeutung?', 'Übersetze "X" ins Englische.']
sentences = """The quick brown fox jumps over the lazy dog.
You are MyPT. Execute the instruction exactly.
Du bist MyPT. Fuehre die Anweisung genau aus.
You are MyPT. Be concise: 1-2 sentences. Follow instructions exactly.
The answer is 42.
Hello world!
Good morning! How are you? I'm good, thank you!
What is your name? My name is MyPT.
Who are you? I am a small language model.
Der schnelle braune Fuchs springt über den faulen Hund.
Guten Morgen! Wie geht es dir? Mir geht es gut, danke.
Ich bin ein kleines Sprachmodell und antworte kurz.
Berlin is the capital of Germany. Paris is the capital of France.
Berlin ist die Hauptstadt von Deutschland. Wien ist die Hauptstadt von Österreich.
The sun rises in the east and sets in the west.
Water boils at 100 degrees Celsius.
Please answer with one word only.
Bitte antworte nur mit einem Wort.
def main(): print("Hello, world!") return 0
if x == 1 and y != 2: return True else: return False
git pull, git push, git commit -m "fix", git status
GET /api/v1/items?id=42 HTTP/1.1 200 OK 404 Not Found 500 Internal Server Error
{"key": "value", "list": [1, 2, 3], "flag": true, "none": null}
x = [1, 2, 3]; y = {"a": 1}; z = (4, 5); s = 'text'; # comment // comment /* block */
Files: main.py, index.html, style.css, app.js, data.json, notes.txt, image.png, report.pdf, config.yaml
Units: 5 km, 10 m, 3 cm, 2 kg, 500 g, 1 l, 60 s, 24 h, 30 min, 100 %, 25 °C
Symbols: + - * / = < > ! ? @ # $ % ^ & ( ) [ ] { } | \\ ~ ` ' " : ; , . _
It is 3:45 pm on 2024-05-17. The price is $19.99 or 18,50 €.
Ä Ö Ü ä ö ü ß é è à ç ñ — – … „quoted“ «guillemets» 😀 ✓""".splitlines()
for w in en_words:
    for t in rng.sample(en_say, 3):
        for form in (w, w.capitalize()):
            L.append(f"{t.format(w=form)} {form.capitalize()}.")
for w in de_words:
    for t in rng.sample(de_say, 3):
        L.append(f"{t.format(w=w)} {w}.")
def gib():
    k = rng.randint(1, 3)
    s = "".join(rng.choice(syll) for _ in range(k))
    r = rng.random()
    if r < 0.3: s = s.capitalize()
    elif r < 0.4: s = s.upper()
    if rng.random() < 0.3: s += str(rng.randint(0, 99))
    return s
for _ in range(1500):
    p = rng.choice(echo_en + echo_de)
    kind = rng.random()
    if kind < 0.35: item = gib()
    elif kind < 0.6: item = rng.choice(en_words + de_words).capitalize()
    elif kind < 0.8: item = " ".join(rng.choice(en_words + de_words) for _ in range(rng.randint(2, 4)))
    else: item = rng.choice([str(rng.randint(0, 9999)), f"{rng.randint(0,99)}.{rng.randint(0,99)}", f"ID-{rng.randint(0,999):03d}", gib().upper() + str(rng.randint(1, 999))])
    L.append(f"{p} {item} {item}")
for _ in range(2500):
    n = rng.randint(1, 4)
    payload = " ".join(rng.choice([rng.choice(en_words), rng.choice(de_words), gib(), str(rng.randint(1, 9999))]) for _ in range(n))
    t = rng.choice(ops)
    q = t.replace("X", payload)
    a = "[" + payload + "]" if ("rack" in t or "Klammer" in t or "[]" in t) else payload
    L.append(f"{q} {a}")
for _ in range(400):
    x = gib(); L.append(rng.choice(anti).replace("X", x) + " " + rng.choice(["Unknown.", "No.", "Unbekannt.", "Nein."]))
for _ in range(2000):
    a, b = rng.randint(0, 150), rng.randint(1, 20)
    op = rng.choice(["+", "-", "×", "*", "÷", "/", "plus", "minus", "times", "mal", "divided by"])
    res = {"+": a + b, "plus": a + b, "-": a - b, "minus": a - b, "×": a * b, "*": a * b, "times": a * b, "mal": a * b}.get(op, a // b)
    L.append(rng.choice([f"What is {a} {op} {b}? {res}.", f"{a} {op} {b}? {res}.", f"Was ist {a} {op} {b}? {res}."]))
for _ in range(4):
    L.extend(sentences)
for _ in range(1200):
    n = rng.randint(5, 14)
    words = [rng.choice(en_words if rng.random() < 0.6 else de_words) for _ in range(n)]
    punct = rng.choice([".", "!", "?", ",", ":", ";"])
    L.append(" ".join(words).capitalize() + punct)
text = "\n".join(L) + "\n"
target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.txt")
with open(target, "w", encoding="utf-8", newline="\n") as handle:
    handle.write(text)
print(len(text.encode()), len(L))
