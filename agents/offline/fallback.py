"""A question the offline model cannot map: a short answer with what it can do, in the user's language."""

from __future__ import annotations

import re

# Word cues per language (lower-case, whole words); Cyrillic letters mean Russian. The first language with the
# most cues wins; English when none matches.
_CUES: dict[str, frozenset[str]] = {
    "es": frozenset(
        [
            "qué",
            "que",
            "cómo",
            "como",
            "está",
            "están",
            "el",
            "los",
            "las",
            "mercado",
            "precio",
            "hola",
            "hoy",
            "por",
            "favor",
            "mi",
            "mis",
            "cuál",
            "debo",
            "comprar",
            "vender",
            "ahora",
            "es",
        ]
    ),
    "de": frozenset(
        [
            "wie",
            "ist",
            "der",
            "die",
            "das",
            "und",
            "was",
            "markt",
            "preis",
            "heute",
            "mein",
            "meine",
            "soll",
            "ich",
            "kaufen",
            "verkaufen",
            "jetzt",
            "hallo",
            "bitte",
            "gerade",
            "geht",
            "gibt",
            "du",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "les",
            "est",
            "comment",
            "quel",
            "quelle",
            "marché",
            "prix",
            "bonjour",
            "aujourd'hui",
            "mon",
            "ma",
            "mes",
            "dois",
            "je",
            "acheter",
            "vendre",
            "maintenant",
            "ça",
            "va",
        ]
    ),
}
_WORDS = re.compile(r"[a-zà-ÿ']+")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)

ANSWERS: dict[str, str] = {
    "en": (
        "I can't answer that without the language model (offline mode). I can: price btc · analyze eth 4h · "
        "levels sol · overview btc · positions · how is my portfolio doing? · long sol 1% stop auto. "
        "Type /help for every command."
    ),
    "es": (
        "No puedo responder a eso sin el modelo de lenguaje (modo sin conexión). Puedo: price btc · "
        "analyze eth 4h · levels sol · overview btc · positions · long sol 1% stop auto. "
        "Escribe /help para ver todos los comandos."
    ),
    "de": (
        "Ohne das Sprachmodell (Offline-Modus) kann ich das nicht beantworten. Ich kann: price btc · "
        "analyze eth 4h · levels sol · overview btc · positions · long sol 1% stop auto. "
        "Mit /help siehst du alle Befehle."
    ),
    "fr": (
        "Je ne peux pas répondre à cela sans le modèle de langage (mode hors ligne). Je peux : price btc · "
        "analyze eth 4h · levels sol · overview btc · positions · long sol 1% stop auto. "
        "Tapez /help pour toutes les commandes."
    ),
    "ru": (
        "Без языковой модели (офлайн-режим) я не могу ответить на это. Я умею: price btc · analyze eth 4h · "
        "levels sol · overview btc · positions · long sol 1% stop auto. Все команды: /help."
    ),
}


def language_of(text: str) -> str:
    """en, es, de, fr or ru, from simple word cues (English when nothing else is recognised)."""
    low = text.lower()
    if _CYRILLIC.search(low):
        return "ru"
    words = set(_WORDS.findall(low.replace("¿", " ").replace("¡", " ")))
    scores = {lang: len(words & cues) for lang, cues in _CUES.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] >= 2 or (scores[best] == 1 and len(words) <= 3) else "en"


def cannot_map(text: str) -> str:
    """The short answer to a question the offline model has no tool for."""
    return ANSWERS[language_of(text)]
