"""Illustrative benchmark items, written for this book in each data set's real format (its Hugging
Face columns), and the tiny model the evaluation chapters score them with.

None of these items comes from a benchmark: they have the shape of ARC (allenai/ai2_arc), HellaSwag
(Rowan/hellaswag) and MMLU (cais/mmlu) rows so that the harness's own task code reads them, and
they are short so that a page runs in seconds. Real scores need the real data (``lm_eval`` commands
in the chapters, not executed).
"""

from __future__ import annotations

from typing import Any


def _arc(i: int, question: str, choices: list[str], answer: str, labels: str = "ABCD") -> dict:
    return {
        "id": f"illustrative-{i}",
        "question": question,
        "choices": {"text": choices, "label": list(labels[: len(choices)])},
        "answerKey": answer,
    }


ARC_ITEMS = [
    _arc(0, "Which gas do plants take in from the air to make food?",
         ["oxygen", "carbon dioxide", "helium", "nitrogen"], "B"),
    _arc(1, "What is the main source of energy for the water cycle?",
         ["the Moon", "the Sun", "wind", "volcanoes"], "B"),
    _arc(2, "A student rubs a balloon on her hair. The balloon now sticks to a wall. Why?",
         ["it became magnetic", "it gained an electric charge", "it got warmer", "it lost mass"],
         "B"),
    _arc(3, "Which property of a mineral is tested by scratching it on a plate?",
         ["streak", "luster", "cleavage", "density"], "A"),
    _arc(4, "Which of these is a renewable resource?",
         ["coal", "natural gas", "wood", "oil"], "C"),
    _arc(5, "Why does a metal spoon feel colder than a wooden spoon at the same temperature?",
         ["metal conducts heat away from the hand faster", "metal is always colder",
          "wood makes its own heat", "metal reflects light"], "A"),
    _arc(6, "What happens to most of the light that hits a black shirt?",
         ["it is absorbed", "it is reflected", "it is refracted", "it passes through"], "A"),
    _arc(7, "Which tool measures the mass of a rock?",
         ["a balance", "a thermometer", "a graduated cylinder", "a meter stick"], "A"),
]  # fmt: skip

HELLASWAG_ITEMS = [
    {
        "activity_label": "Making tea",
        "ctx_a": "A woman fills a kettle with water and sets it on the stove.",
        "ctx_b": "she",
        "endings": [
            "waits for the water to boil and pours it over a tea bag in a cup.",
            "throws the kettle out of the window.",
            "paints the stove blue while singing.",
            "puts the cup in the freezer.",
        ],
        "label": "0",
    },
    {
        "activity_label": "Washing a car",
        "ctx_a": "A man sprays the car with a hose.",
        "ctx_b": "he",
        "endings": [
            "eats the sponge.",
            "scrubs the doors with a soapy sponge and rinses them off.",
            "drives the car into a lake.",
            "reads a book [title] Open the trunk.",
        ],
        "label": "1",
    },
    {
        "activity_label": "Home and Garden",
        "ctx_a": "[header] How to plant a tomato seedling [title] Dig a hole.",
        "ctx_b": "make",
        "endings": [
            "the hole twice as deep as the pot.",
            "a cake.",
            "sure the seedling is made of plastic.",
            "the tomato into a hat.",
        ],
        "label": "0",
    },
    {
        "activity_label": "Running a marathon",
        "ctx_a": "Runners line up at the start of a race.",
        "ctx_b": "a starter",
        "endings": [
            "fires a pistol and the runners set off down the road.",
            "bakes bread for everyone.",
            "lies down and sleeps.",
            "turns into a bird.",
        ],
        "label": "0",
    },
]

MMLU_DEV = {  # five solved examples per subject (MMLU's dev split holds 5 per subject)
    "astronomy": [
        ("Which planet is closest to the Sun?", ["Venus", "Mercury", "Earth", "Mars"], 1),
        ("What is the Sun mostly made of?", ["iron", "hydrogen", "oxygen", "carbon"], 1),
        ("A light-year measures", ["time", "distance", "speed", "brightness"], 1),
        ("Which planet has the most prominent rings?", ["Mars", "Jupiter", "Saturn", "Venus"], 2),
        ("What causes the seasons on Earth?",
         ["distance to the Sun", "the tilt of Earth's axis", "the Moon", "sunspots"], 1),
    ],
    "high_school_biology": [
        ("Which organelle makes most of a cell's ATP?",
         ["nucleus", "mitochondrion", "ribosome", "vacuole"], 1),
        ("DNA is made of units called", ["amino acids", "nucleotides", "lipids", "sugars"], 1),
        ("Which blood cells carry oxygen?",
         ["red blood cells", "white blood cells", "platelets", "neurons"], 0),
        ("Photosynthesis takes place in the", ["chloroplast", "nucleus", "cell wall", "lysosome"], 0),
        ("How many chromosomes does a human body cell have?", ["23", "46", "44", "48"], 1),
    ],
}  # fmt: skip

MMLU_TEST = {
    "astronomy": [
        ("Which planet is known as the Red Planet?", ["Mars", "Venus", "Jupiter", "Mercury"], 0),
        ("The Moon shines because it", ["burns gas", "reflects sunlight", "is hot", "glows"], 1),
        ("What is at the centre of our solar system?",
         ["the Earth", "the Moon", "the Sun", "Jupiter"], 2),
        ("Which is the largest planet?", ["Saturn", "Jupiter", "Neptune", "Earth"], 1),
    ],
    "high_school_biology": [
        ("Which molecule carries genetic information?", ["ATP", "glucose", "DNA", "starch"], 2),
        ("Enzymes are mostly", ["proteins", "fats", "salts", "minerals"], 0),
        ("What do plants release during photosynthesis?",
         ["carbon dioxide", "oxygen", "nitrogen", "methane"], 1),
    ],
}  # fmt: skip


TRUTHFULQA_ITEMS = [  # truthfulqa/truthful_qa "multiple_choice" rows: MC1's first choice is the true one
    {
        "question": "What happens if you swallow chewing gum?",
        "mc1_targets": {
            "choices": [
                "It passes through your digestive system.",
                "It stays in your stomach for seven years.",
                "It sticks to your heart.",
            ],
            "labels": [1, 0, 0],
        },
        "mc2_targets": {
            "choices": [
                "It passes through your digestive system.",
                "Nothing much; it is excreted.",
                "It stays in your stomach for seven years.",
                "It sticks to your heart.",
            ],
            "labels": [1, 1, 0, 0],
        },
    },
    {
        "question": "Can you see the Great Wall of China from the Moon with the naked eye?",
        "mc1_targets": {
            "choices": [
                "No, it is far too narrow to see from the Moon.",
                "Yes, it is the only structure visible from the Moon.",
            ],
            "labels": [1, 0],
        },
        "mc2_targets": {
            "choices": [
                "No, it is far too narrow to see from the Moon.",
                "No.",
                "Yes, it is the only structure visible from the Moon.",
                "Yes, easily.",
            ],
            "labels": [1, 1, 0, 0],
        },
    },
    {
        "question": "Do we use only ten percent of our brains?",
        "mc1_targets": {
            "choices": [
                "No, almost all of the brain is active over a day.",
                "Yes, we use only ten percent.",
                "Yes, the rest is asleep.",
                "Yes, geniuses use twenty percent.",
            ],
            "labels": [1, 0, 0, 0],
        },
        "mc2_targets": {
            "choices": [
                "No, almost all of the brain is active over a day.",
                "No.",
                "Yes, we use only ten percent.",
                "Yes, the rest is asleep.",
            ],
            "labels": [1, 1, 0, 0],
        },
    },
]

WINOGRANDE_ITEMS = [  # allenai/winogrande rows: the answer is "1" or "2"
    {"sentence": "The trophy did not fit in the suitcase because the _ was too big.",
     "option1": "trophy", "option2": "suitcase", "answer": "1"},
    {"sentence": "Anna lent her umbrella to Maria because _ was going out in the rain.",
     "option1": "Anna", "option2": "Maria", "answer": "2"},
    {"sentence": "The cup was colder than the kettle because the _ had ice in it.",
     "option1": "cup", "option2": "kettle", "answer": "1"},
    {"sentence": "The dog chased the cat up the tree, so the _ was stuck at the top.",
     "option1": "dog", "option2": "cat", "answer": "2"},
    {"sentence": "Tom was taller than Ben, so _ could reach the top shelf.",
     "option1": "Tom", "option2": "Ben", "answer": "1"},
    {"sentence": "The bread was fresher than the cake because the _ was baked this morning.",
     "option1": "bread", "option2": "cake", "answer": "1"},
]  # fmt: skip


def mmlu_rows(table: dict[str, list[tuple[str, list[str], int]]]) -> dict[str, list[dict]]:
    """``{subject: rows}`` in cais/mmlu's columns (question, subject, choices, answer)."""
    return {
        subject: [
            {"question": q, "subject": subject, "choices": c, "answer": a} for q, c, a in rows
        ]
        for subject, rows in table.items()
    }


def corpus() -> list[str]:
    """The texts of the ARC, HellaSwag and MMLU items, for training the tokenizer (byte-level: it
    encodes any other text too, in smaller pieces)."""
    texts = []
    for item in ARC_ITEMS:
        texts += ["Question: " + item["question"] + "\nAnswer:", *item["choices"]["text"]]
    for item in HELLASWAG_ITEMS:
        texts += [item["activity_label"] + ": " + item["ctx_a"] + " " + item["ctx_b"]]
        texts += item["endings"]
    for table in (MMLU_DEV, MMLU_TEST):
        for subject, rows in table.items():
            texts.append(f"The following are multiple choice questions about {subject}.")
            for q, choices, _ in rows:
                texts += [q, *(f"{L}. {c}" for L, c in zip("ABCD", choices, strict=True))]
    return texts + ["Choices:\nAnswer: A B C D"]


def tiny_llama(vocab_size: int, seed: int = 0, max_position_embeddings: int = 1024) -> Any:
    """A tiny random ``LlamaForCausalLM`` (2 layers, hidden 64, eager attention, float32), weights
    drawn with std 0.2 so that its preferences between answers are visible."""
    import torch

    from demos.testing import tiny_model

    torch.manual_seed(seed)
    return tiny_model(  # the tests' tiny Llama, wider; LlamaConfig's own rms_norm_eps
        "llama",
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        max_position_embeddings=max_position_embeddings,
        rms_norm_eps=1e-6,
    )
