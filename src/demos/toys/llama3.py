"""A small multilingual + code corpus written for the Llama 3 chapter, and byte-level BPE on it.

The texts below were written for this book (no download, no copied text): a few paragraphs each in
English, German, French, Spanish, Russian, Chinese and Hindi about the same everyday topics, and
a little Python. The last paragraph of each is held out: tokenizers are trained on the rest and
measured on it. The corpus is tiny (a few thousand characters per language), so the numbers show
the *direction* of the effect of a larger vocabulary, not Llama 3's real compression.

Reference implementation: tokenizers==0.23.3, ``ByteLevelBPETokenizer`` (GPT-2-style byte-level
BPE, the family of Llama 3's tiktoken-based tokenizer).
"""

from __future__ import annotations

CORPUS: dict[str, str] = {
    "English": """\
The library opens at nine in the morning and closes at six in the evening. On rainy days the reading
room fills up quickly, and the old radiator under the window hums like a tired cat. Most visitors come
for the newspapers, a few for the quiet, and some only to charge their phones.

A language model reads text as a sequence of tokens. A token may be a whole word, a piece of a word,
or a single byte. The more common a string is in the training data, the more likely it is to become
one token, and the fewer tokens a typical sentence needs.

My grandmother kept a notebook of recipes written in three languages. Bread was in German, soup was in
French, and every dessert was in Spanish, because, she said, sweet things sound better that way.

Counting is harder than it looks. A model that sees the number 1234 as one token must learn its digits
from scratch, while a model that splits it into 1, 2, 3 and 4 can reuse what it knows about each digit.

The train to the coast leaves every hour. In summer it is full of children with buckets and spades; in
winter it carries only a few fishermen, a postman and the smell of coffee from the small buffet car.""",
    "German": """\
Die Bibliothek öffnet um neun Uhr morgens und schließt um sechs Uhr abends. An Regentagen füllt sich
der Lesesaal schnell, und die alte Heizung unter dem Fenster brummt wie eine müde Katze. Die meisten
Besucher kommen wegen der Zeitungen, einige wegen der Ruhe und manche nur, um ihr Telefon zu laden.

Ein Sprachmodell liest Text als eine Folge von Tokens. Ein Token kann ein ganzes Wort sein, ein Teil
eines Wortes oder ein einzelnes Byte. Je häufiger eine Zeichenkette in den Trainingsdaten vorkommt,
desto eher wird sie zu einem Token, und desto weniger Tokens braucht ein gewöhnlicher Satz.

Meine Großmutter führte ein Heft mit Rezepten in drei Sprachen. Das Brot stand auf Deutsch, die Suppe
auf Französisch und jede Nachspeise auf Spanisch, weil süße Dinge so, sagte sie, besser klingen.

Zählen ist schwieriger, als es aussieht. Ein Modell, das die Zahl 1234 als ein einziges Token sieht,
muss ihre Ziffern von Grund auf lernen, während ein Modell, das sie in 1, 2, 3 und 4 zerlegt, sein
Wissen über jede Ziffer wiederverwenden kann.

Der Zug an die Küste fährt jede Stunde. Im Sommer ist er voller Kinder mit Eimern und Schaufeln; im
Winter fahren nur ein paar Fischer mit, ein Briefträger und der Kaffeeduft aus dem kleinen Speisewagen.""",
    "French": """\
La bibliothèque ouvre à neuf heures du matin et ferme à six heures du soir. Les jours de pluie, la
salle de lecture se remplit vite, et le vieux radiateur sous la fenêtre ronronne comme un chat
fatigué. La plupart des visiteurs viennent pour les journaux, quelques-uns pour le calme, et certains
seulement pour recharger leur téléphone.

Un modèle de langue lit un texte comme une suite de jetons. Un jeton peut être un mot entier, un
morceau de mot ou un seul octet. Plus une chaîne est fréquente dans les données d'entraînement, plus
elle a de chances de devenir un jeton, et moins une phrase ordinaire demande de jetons.

Ma grand-mère tenait un carnet de recettes écrit en trois langues. Le pain était en allemand, la soupe
en français et chaque dessert en espagnol, parce que, disait-elle, les douceurs sonnent mieux ainsi.

Compter est plus difficile qu'il n'y paraît. Un modèle qui voit le nombre 1234 comme un seul jeton doit
apprendre ses chiffres à partir de rien, alors qu'un modèle qui le découpe en 1, 2, 3 et 4 peut
réutiliser ce qu'il sait de chaque chiffre.

Le train pour la côte part toutes les heures. En été, il est plein d'enfants avec des seaux et des
pelles ; en hiver, il ne transporte que quelques pêcheurs, un facteur et l'odeur du café du petit
wagon-bar.""",
    "Spanish": """\
La biblioteca abre a las nueve de la mañana y cierra a las seis de la tarde. Los días de lluvia la
sala de lectura se llena enseguida, y el viejo radiador bajo la ventana zumba como un gato cansado.
La mayoría de los visitantes viene por los periódicos, algunos por el silencio y otros solo para
cargar el teléfono.

Un modelo de lenguaje lee el texto como una secuencia de tokens. Un token puede ser una palabra
entera, un trozo de palabra o un solo byte. Cuanto más común es una cadena en los datos de
entrenamiento, más probable es que se convierta en un token, y menos tokens necesita una frase normal.

Mi abuela tenía un cuaderno de recetas escrito en tres idiomas. El pan estaba en alemán, la sopa en
francés y cada postre en español, porque, decía ella, las cosas dulces suenan mejor así.

Contar es más difícil de lo que parece. Un modelo que ve el número 1234 como un solo token debe
aprender sus cifras desde cero, mientras que un modelo que lo divide en 1, 2, 3 y 4 puede reutilizar
lo que sabe de cada cifra.

El tren a la costa sale cada hora. En verano va lleno de niños con cubos y palas; en invierno solo
lleva a unos cuantos pescadores, un cartero y el olor a café del pequeño vagón restaurante.""",
    "Russian": """\
Библиотека открывается в девять утра и закрывается в шесть вечера. В дождливые дни читальный зал
быстро заполняется, а старая батарея под окном урчит, как усталая кошка. Большинство посетителей
приходят за газетами, некоторые за тишиной, а кое-кто только для того, чтобы зарядить телефон.

Языковая модель читает текст как последовательность токенов. Токен может быть целым словом, частью
слова или одним байтом. Чем чаще строка встречается в обучающих данных, тем вероятнее она станет
одним токеном и тем меньше токенов нужно обычному предложению.

Моя бабушка вела тетрадь с рецептами на трёх языках. Хлеб был записан по-немецки, суп по-французски, а
каждый десерт по-испански, потому что сладкое, говорила она, так звучит лучше.

Считать труднее, чем кажется. Модель, которая видит число 1234 как один токен, должна выучить его
цифры с нуля, а модель, которая делит его на 1, 2, 3 и 4, может использовать то, что знает о каждой
цифре.

Поезд к морю уходит каждый час. Летом он полон детей с вёдрами и лопатками, а зимой везёт лишь
нескольких рыбаков, почтальона и запах кофе из маленького вагона-буфета.""",
    "Chinese": """\
图书馆早上九点开门，晚上六点关门。下雨天阅览室很快就坐满了，窗下那台旧暖气像一只疲倦的猫一样嗡嗡作响。
大多数来访者是来看报纸的，有些人是为了安静，还有些人只是来给手机充电。

语言模型把文本当作一串词元来读。一个词元可以是一个完整的词，也可以是词的一部分，或者只是一个字节。
一个字符串在训练数据中越常见，就越可能成为一个词元，一个普通句子需要的词元也就越少。

我的祖母有一本用三种语言写的食谱。面包用德语写，汤用法语写，每一道甜点都用西班牙语写，
因为她说，甜的东西这样听起来更好。

数数比看起来要难。把数字1234看作一个词元的模型必须从头学习它的每一位，而把它拆成1、2、3和4的模型
可以重复利用它对每个数字已有的了解。

开往海边的火车每小时一班。夏天车上挤满了拿着小桶和铲子的孩子；冬天只载着几个渔民、一个邮递员，
还有小餐车里飘出的咖啡香。""",
    "Hindi": """\
पुस्तकालय सुबह नौ बजे खुलता है और शाम छह बजे बंद होता है। बारिश के दिनों में वाचनालय जल्दी भर जाता है,
और खिड़की के नीचे पुराना हीटर थकी हुई बिल्ली की तरह गुनगुनाता है। ज़्यादातर लोग अख़बार पढ़ने आते हैं,
कुछ शांति के लिए, और कुछ सिर्फ़ अपना फ़ोन चार्ज करने के लिए।

भाषा मॉडल पाठ को टोकनों के एक क्रम के रूप में पढ़ता है। एक टोकन पूरा शब्द, शब्द का एक हिस्सा या सिर्फ़ एक
बाइट हो सकता है। कोई स्ट्रिंग प्रशिक्षण डेटा में जितनी आम होती है, उसके एक टोकन बनने की संभावना उतनी ही
ज़्यादा होती है, और एक सामान्य वाक्य को उतने ही कम टोकन चाहिए।

मेरी दादी के पास तीन भाषाओं में लिखी व्यंजनों की एक कॉपी थी। रोटी जर्मन में लिखी थी, सूप फ़्रेंच में और
हर मिठाई स्पेनिश में, क्योंकि वे कहती थीं कि मीठी चीज़ें ऐसे ही अच्छी लगती हैं।

गिनती जितनी दिखती है उससे कठिन है। जो मॉडल 1234 को एक ही टोकन मानता है, उसे इसके अंक शुरू से सीखने पड़ते
हैं, जबकि जो मॉडल इसे 1, 2, 3 और 4 में तोड़ता है, वह हर अंक के बारे में अपनी जानकारी फिर से काम में ले सकता है।

समुद्र तट की ओर जाने वाली रेलगाड़ी हर घंटे चलती है। गर्मियों में वह बाल्टी और फावड़े लिए बच्चों से भरी रहती
है; सर्दियों में उसमें बस कुछ मछुआरे, एक डाकिया और छोटे भोजनयान से आती कॉफ़ी की ख़ुशबू होती है।""",
    "Python": '''\
def count_tokens(texts, tokenizer):
    """Return the number of tokens per text."""
    return [len(tokenizer.encode(text).ids) for text in texts]


def tokens_per_character(texts, tokenizer):
    total_tokens = sum(count_tokens(texts, tokenizer))
    total_characters = sum(len(text) for text in texts)
    return total_tokens / total_characters


for hour in range(8, 20):
    library = Library()
    status = "open" if library.is_open(hour) else "closed"
    print(f"{hour:02d}:00 {status}")


def split_digits(number):
    """The digits of a non-negative integer, most significant first."""
    return [int(digit) for digit in str(number)]


class Library:
    def __init__(self, opens_at=9, closes_at=18):
        self.opens_at = opens_at
        self.closes_at = closes_at
        self.visitors = []
    def is_open(self, hour):
        return self.opens_at <= hour < self.closes_at
    def arrive(self, name, hour):
        if not self.is_open(hour):
            raise ValueError(f"the library is closed at {hour}:00")
        self.visitors.append(name)''',
}


def paragraphs(text: str) -> list[str]:
    """The paragraphs of ``text`` (separated by blank lines)."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def split_corpus(corpus: dict[str, str] = CORPUS) -> tuple[dict[str, str], dict[str, str]]:
    """``(train, held_out)``: per language, all paragraphs but the last, and the last."""
    train, held_out = {}, {}
    for language, text in corpus.items():
        parts = paragraphs(text)
        train[language] = "\n\n".join(parts[:-1])
        held_out[language] = parts[-1]
    return train, held_out


def train_byte_level_bpe(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (``tokenizers``) with at most ``vocab_size`` tokens, trained on
    ``texts``: the 256 bytes plus the merges learned. ``ValueError`` when ``vocab_size < 256``."""
    from tokenizers import ByteLevelBPETokenizer

    from demos.validation import check_positive_int

    check_positive_int("vocab_size", vocab_size)
    if vocab_size < 256:
        raise ValueError(
            f"vocab_size ({vocab_size}) must be >= 256: byte-level BPE starts from bytes"
        )
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, show_progress=False
    )
    return tokenizer


def tokens_per_character(tokenizer, text: str) -> float:
    """Tokens ``tokenizer`` needs for ``text``, divided by its characters (Unicode code points)."""
    if not text:
        raise ValueError("text is empty: tokens per character needs at least one character")
    return len(tokenizer.encode(text).ids) / len(text)
