"""Built-in text models (data only)."""

from __future__ import annotations

from ..spec import ModelSpec

VADER = ModelSpec(
    name="vader",
    modality="text",
    task="sentiment",
    runtime="python",
    factory="emonb.models.text.analyze:build_vader",
    outputs=("negative", "neutral", "positive", "compound"),
    version="3.3.2",
    license="MIT",
    citation="Hutto CJ, Gilbert E (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis "
             "of Social Media Text. Proc. ICWSM-14.",
    training_data="Human-rated English lexicon (about 7,500 entries) and grammatical rules; no training.",
    limitations="English only; scores words and punctuation, not meaning in context (sarcasm, negation "
                "beyond three words, domain terms); sentiment of the words, not of the speaker.",
    description="VADER lexicon-and-rule sentiment (vaderSentiment package): compound score in [-1, 1] per "
                "transcript segment.",
)

SPECS = [VADER]
