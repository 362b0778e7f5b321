"""Illustrative GSM8K items and model outputs for the GSM8K chapter, its trap and its tests.

Written for this book in GSM8K's format (a word problem; a worked solution whose last line is
``#### N``) [cobbe2021gsm8k]; none is taken from the data set. The outputs are what a model might
write, chosen to hit each corner of the harness's answer extraction: thousands separators, dollar
signs, negative numbers, trailing periods, "The answer is N." without ``####``, a number written
after the answer, ``18.00`` for ``18``, no number at all.
"""

from __future__ import annotations

SHOTS = [  # five few-shot examples, as the Open LLM Leaderboard's 5-shot setting uses
    {
        "question": "A baker makes 24 muffins and sells 15 of them. How many muffins are left?",
        "answer": "The baker has 24 - 15 = 9 muffins left.\n#### 9",
    },
    {
        "question": "Tom buys 3 books that cost $12 each. How much does he spend?",
        "answer": "He spends 3 * 12 = $36.\n#### 36",
    },
    {
        "question": "A tank holds 1,200 liters and fills at 150 liters per hour. How many hours "
        "does it take to fill the empty tank?",
        "answer": "It takes 1,200 / 150 = 8 hours.\n#### 8",
    },
    {
        "question": "Ana has 5 apples. Her aunt gives her twice as many. How many apples does "
        "Ana have now?",
        "answer": "Her aunt gives her 5 * 2 = 10 apples.\nAna has 5 + 10 = 15 apples.\n#### 15",
    },
    {
        "question": "It was 4 degrees in the evening and the temperature fell by 11 degrees "
        "overnight. What was the temperature in the morning?",
        "answer": "In the morning it was 4 - 11 = -7 degrees.\n#### -7",
    },
]

# (item, what a model wrote): each output exercises one corner of the extraction
CASES = [
    (
        {
            "question": "A school orders 25 boxes of 50 pencils. How many pencils is that?",
            "answer": "25 * 50 = 1,250 pencils.\n#### 1,250",
        },
        "There are 25 * 50 = 1,250 pencils.\n#### 1,250",  # thousands separator: both match
    ),
    (
        {
            "question": "Mia buys 3 scarves at $6 each. How much does she pay?",
            "answer": "She pays 3 * 6 = $18.\n#### 18",
        },
        "She pays 3 * 6 = $18.\nThe answer is $18.",  # no ####: only flexible-extract reads it
    ),
    (
        {
            "question": "A diver is 5 meters below the surface and rises 8 meters. Where is she "
            "relative to the surface, in meters?",
            "answer": "She is at -5 + 8 = 3 meters.\n#### 3",
        },
        "Starting at -5 and rising 8 gives -5 + 8 = 3.\n#### 3",  # negatives in the working
    ),
    (
        {
            "question": "Each of 6 shelves holds 7 jars. How many jars are there?",
            "answer": "6 * 7 = 42 jars.\n#### 42",
        },
        "6 * 7 = 42. The answer is 42.",  # the trailing period is ignored by exact_match
    ),
    (
        {
            "question": "A club has 30 members in 5 equal teams. How many members are in the club?",
            "answer": "The club has 30 members.\n#### 30",
        },
        "The club has 30 members.\n#### 30\nCheck: 30 / 5 = 6 per team.",  # a number after it
    ),
    (
        {
            "question": "Lunch costs $4.50 and a drink $13.50. What is the total in dollars?",
            "answer": "4.50 + 13.50 = 18 dollars.\n#### 18",
        },
        "The total is 4.50 + 13.50 = 18.00 dollars.\n#### 18.00",  # 18.00 is not 18
    ),
    (
        {
            "question": "A farmer has 9 cows and buys 5 more. How many cows does he have?",
            "answer": "9 + 5 = 14 cows.\n#### 14",
        },
        "9 + 3 = 12 cows.\n#### 12",  # simply wrong
    ),
    (
        {
            "question": "A shop sells 400 pens a day. How many pens does it sell in 10 days?",
            "answer": "400 * 10 = 4,000 pens.\n#### 4,000",
        },
        "I am not sure how to solve this problem.",  # no number: [invalid] for both
    ),
    (
        {
            "question": "A bike costs $250. How much do 4 bikes cost in dollars?",
            "answer": "4 * 250 = $1,000.\n#### 1000",
        },
        "4 * 250 = 1,000\n#### $1,000.",  # a $ after ####: strict-match cannot read it
    ),
    (
        {
            "question": "A recipe needs 3 eggs per cake. How many eggs for 24 cakes?",
            "answer": "3 * 24 = 72 eggs.\n#### 72",
        },
        "3 * 24 = 72 eggs.\n#### 72.",  # trailing period after ####
    ),
]

ITEMS = [item for item, _ in CASES]
OUTPUTS = [output for _, output in CASES]
