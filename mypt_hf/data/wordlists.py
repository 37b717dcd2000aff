"""Word pools shared by the generators (plain tuples: fixed order, so seeded draws are reproducible).

Kept in one module so the reserved evaluation payloads (``reserved.py``) can be checked against
every word the generators may emit.
"""

from __future__ import annotations

from typing import Tuple

# ---------------------------------------------------------------------------------------------
# English common words (operator payloads, echo pools). Lowercase, ASCII, no duplicates.
COMMON_WORDS_EN: Tuple[str, ...] = tuple("""
apple anchor arrow autumn badge bakery bamboo banana basket beacon berry bicycle blanket blossom
boat bottle branch bread breeze brick bridge brush bucket butter button cabin cactus camera
candle canoe canvas carpet carrot castle cedar chair chalk cherry circle cliff clock cloud
clover coffee comet copper coral cotton cradle crane crown curtain daisy desert diamond dolphin
door dragonfly drum eagle earth echo engine falcon feather fence fern field flame flute fog
forest fountain garden garlic giant ginger glacier glass glove grape gravel guitar hammer harbor
harvest hat hazel helmet hill honey island ivory jacket jasmine jelly jungle kettle kitten
ladder lantern lava lemon letter lily lion magnet mango maple meadow melon mirror mitten
monkey moss motor mountain mouse music needle nest noodle oak ocean olive onion orbit orchard
otter owl paddle palace panda paper parrot pebble pencil pepper piano pillow pine planet plum
pocket pond potato puzzle quilt rabbit radio rain raven ribbon river robot rocket rope rose
saddle sail salmon sand scarf school seed shadow shell shovel silk sky snow soap sock spark
spider spoon spring square stamp star stone storm sugar summer sun swan table teapot tent
thread tiger timber tomato tower train tulip tunnel turtle umbrella valley velvet violin
wagon walnut water wave whale wheat wheel willow window winter wolf wool yarn zebra
""".split())

ADJECTIVES_EN: Tuple[str, ...] = tuple("""
big small old new warm cold quiet loud bright soft quick slow happy tall short green brown
white black yellow round sharp sweet fresh wild calm busy empty heavy light early late
""".split())

GERMAN_WORDS: Tuple[str, ...] = tuple("""
Apfel Baum Blume Brot Buch Burg Dach Dorf Feld Fenster Fisch Fluss Garten Glas Haus Himmel
Hund Insel Kaese Katze Kerze Kirche Kissen Kuchen Kueche Lampe Licht Loewe Mond Nacht Nebel
Regen Ring Rose Schiff Schloss Schnee Schule Sonne Stadt Stein Stern Strasse Stuhl Tasche
Teller Tisch Turm Uhr Vogel Wagen Wald Wasser Welle Wind Winter Wolke Zeit Zug Zucker
""".split())

#: Syllables for made-up words (operator payloads and gibberish).
SYLLABLES: Tuple[str, ...] = tuple("""
ba be bi bo bu da de di do du fa fe fi fo fu ga ge gi go gu ka ke ki ko ku la le li lo lu
ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu
va ve vi vo vu za ze zi zo zu bla ble bli blo bru cra cre dro fla fle fro gla gre kra kri
pla ple pri pro sla sle sna sno spa spe sta ste stro tra tre tri tro zel zon rix lor mar
""".split())

#: Nouns that end a 3-word "a w NOUN" payload.
PLACE_NOUNS: Tuple[str, ...] = ("house", "tree", "river", "mountain", "lake", "road", "garden", "tower")

# ---------------------------------------------------------------------------------------------
# Echo content pools (non-gibberish). Capitalised as a user would type them.
ECHO_WORDS_EN: Tuple[str, ...] = tuple("""
Yes No Hello Goodbye Thanks Please Sorry Maybe Okay Sure Ready Done Start Stop Wait Continue
Apple Banana Orange Grape Lemon Cherry Peach Mango Melon Plum Tiger Lion Horse Rabbit Turtle
Eagle Dolphin Shark Wolf Bear Window Door Table Chair Lamp Pillow Blanket Mirror Clock Candle
Pencil Paper Letter Stamp Basket Bottle Kettle Spoon Plate Bucket Garden Forest River Ocean
Island Valley Desert Meadow Harbor Bridge Castle Tower Village Market School Library Station
Morning Evening Winter Summer Spring Autumn Monday Friday Sunday January April October
Red Blue Green Yellow Purple Black White Silver Golden Brown Music Guitar Piano Violin Drum
Rocket Planet Comet Galaxy Rainbow Thunder Lightning Breeze Cloud Storm Coffee Cookie Bread
Butter Honey Sugar Pepper Salt Cheese Pasta Rice Soup Salad Camera Radio Robot Engine Ladder
Hammer Rope Anchor Compass Lantern Helmet Jacket Scarf Glove Boot Ticket Wallet Key Button
""".split())

ECHO_PHRASES_EN: Tuple[str, ...] = (
    "Hello world", "Good morning", "Good night", "Thank you", "See you later", "Nice to meet you",
    "The answer is 42", "All systems go", "Mission complete", "Access granted", "Access denied",
    "Try again", "Well done", "Not yet", "Of course", "Right away", "No problem", "Happy birthday",
    "Open the door", "Close the window", "Turn left", "Turn right", "Keep going", "Slow down",
    "The sky is blue", "Cats like milk", "Water is wet", "Time to go", "Welcome home", "Stay calm",
    "Red and blue", "Salt and pepper", "Rock and roll", "Up and down", "Left or right",
    "X Y Z", "A B C", "One two three", "Test passed", "Load complete", "System ready",
    "Green light", "Blue moon", "Cold coffee", "Fresh bread", "Quiet night", "Big city lights",
    "Under the bridge", "Over the hill", "Into the forest", "Across the river", "Back to work",
    "First things first", "Just in time", "Once upon a time", "Last call", "Fair enough",
    "Good luck", "Safe travels", "Sweet dreams",
)

ECHO_NUMBERS_AND_CODES: Tuple[str, ...] = (
    "42", "7", "13", "100", "256", "1024", "2024", "3.14", "2.718", "0.5", "99", "365", "1000",
    "ABC123", "XYZ789", "ID-001", "ID-042", "A1", "B2", "C3", "Q7", "X9", "R2D2", "C3PO", "V8",
    "404", "200", "500", "8080", "127.0.0.1", "v1.2", "v2.0", "2.5.1", "12:30", "07:45", "3/4",
    "1/2", "50%", "#7", "No. 5", "AB-12", "ZX-81", "K9", "M3", "PX-4", "TX-100", "QR-55", "LX-9",
    "2048", "4096", "65536", "0.001", "-5", "-12", "+7", "1e6", "0x1F", "0b101", "77", "888",
)

ECHO_SENTENCES_EN: Tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.", "I like green apples.", "The sun is shining today.",
    "Please close the door.", "My cat sleeps all day.", "We will meet at noon.", "The train leaves at six.",
    "This is a test.", "Birds can fly.", "The river flows to the sea.", "Reading is fun.",
    "Tomorrow will be sunny.", "The coffee is hot.", "She plays the piano.", "He reads the news.",
    "The box is empty.", "Snow covers the hills.", "Lights are on.", "The door is open.",
    "Dinner is ready.",
)

ECHO_WORDS_DE: Tuple[str, ...] = tuple("""
Ja Nein Hallo Danke Bitte Tschuess Vielleicht Fertig Bereit Stopp Apfel Birne Banane Kirsche
Traube Zitrone Hund Katze Pferd Vogel Fisch Maus Baum Blume Haus Garten Wald Fluss Berg See
Fenster Tuer Tisch Stuhl Lampe Kerze Uhr Buch Brief Brot Butter Kaese Milch Wasser Kaffee Tee
Sonne Mond Stern Regen Schnee Wind Wolke Sommer Winter Montag Freitag Sonntag Rot Blau Gruen
Gelb Schwarz Weiss Schule Stadt Dorf Strasse Bruecke Schloss Zug Auto Schiff Flugzeug Rakete
Musik Gitarre Klavier Trommel Morgen Abend Nacht
""".split())

ECHO_PHRASES_DE: Tuple[str, ...] = (
    "Guten Morgen", "Guten Abend", "Gute Nacht", "Vielen Dank", "Bis bald", "Bis morgen",
    "Alles klar", "Kein Problem", "Herzlich willkommen", "Viel Glueck", "Gute Reise", "Na klar",
    "Sehr gut", "Noch nicht", "Sofort", "Rot und blau", "Salz und Pfeffer", "Links oder rechts",
    "Der Himmel ist blau", "Die Antwort ist 42", "Zeit zu gehen", "Schoenen Tag", "Gern geschehen",
    "Einen Moment", "Alles gut", "Frohes Fest", "Guten Appetit", "Tuer zu", "Licht aus",
    "Bitte warten",
)

ECHO_SENTENCES_DE: Tuple[str, ...] = (
    "Der Hund schlaeft.", "Ich trinke gern Tee.", "Die Sonne scheint heute.", "Das Buch ist neu.",
    "Wir treffen uns um zwei.", "Der Zug kommt spaet.", "Das ist ein Test.", "Die Katze ist schwarz.",
    "Es regnet draussen.", "Das Essen ist fertig.", "Der Baum ist gross.", "Heute ist Montag.",
)

#: Hand-written made-up words (the original's predefined gibberish, extended).
GIBBERISH_SEED_EN: Tuple[str, ...] = (
    "Blax", "Crex", "Dwip", "Fronk", "Glim", "Hurv", "Jexo", "Kwib", "Lurf", "Mipo", "Nozz", "Plib",
    "Quor", "Rask", "Snib", "Trov", "Ulbo", "Vesk", "Wopp", "Yibb", "Zorp", "Crex3", "Blip7", "X7",
    "AB", "A1", "aB", "Qz", "Zyx", "Flib", "Grux", "Krel", "Mox", "Drib", "Tuvo", "Pex",
)
GIBBERISH_SEED_DE: Tuple[str, ...] = (
    "Bloex", "Traex", "Vroex", "Glueb", "Kraef", "Schnurx", "Pfolk", "Zwirp", "Mueff", "Knarz",
    "Wuesch", "Plaetz", "Broell", "Fuerk", "Sproex", "Duemp",
)

__all__ = [
    "COMMON_WORDS_EN", "ADJECTIVES_EN", "GERMAN_WORDS", "SYLLABLES", "PLACE_NOUNS",
    "ECHO_WORDS_EN", "ECHO_PHRASES_EN", "ECHO_NUMBERS_AND_CODES", "ECHO_SENTENCES_EN",
    "ECHO_WORDS_DE", "ECHO_PHRASES_DE", "ECHO_SENTENCES_DE", "GIBBERISH_SEED_EN", "GIBBERISH_SEED_DE",
]
