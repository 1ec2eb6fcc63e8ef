"""Who speaks in each EmoBox utterance, read from its key by the corpus's own naming convention.

EmoBox's JSON lines carry no ``speaker`` field, so without these rules every utterance would be
its own pseudo-speaker: a dev carve-out would split one actor between train and dev, and a
speaker bootstrap would resample utterances. Each rule below is the naming convention the
corpus documents for its file names (EmoBox keys are ``<dataset>-<file name>``, with ``_``
sometimes turned into ``-``); a key that does not follow it is refused, never guessed at.

Gender is given only where the corpus documents it (a letter in the name, a documented list of
speakers, or one speaker). Datasets with no speaker in their file names have no speaker rule
(the reason is in :data:`NO_SPEAKER_IN_KEYS`); three of them take the speaker column of the
``data.seg.wrd.stm`` file EmoBox ships beside the JSON lines (:data:`STM_SPEAKERS`), the others
stay unknown.

``shared_speakers`` marks a dataset whose EmoBox folds put one speaker in both train and test
(measured on EmoBox's fold files with the rule's speakers): the protocol declares it
speaker-dependent instead of having it refused as a leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FEMALE, MALE = "F", "M"


@dataclass(frozen=True)
class SpeakerRule:
    """A dataset's naming convention. ``pattern`` is a regular expression over the key without
    its ``<dataset>-`` prefix; ``speaker`` formats its named groups into the speaker id (a
    literal for a single-speaker corpus, None where the name gives no speaker); ``genders``
    maps the ``sex`` group, else the speaker id, to F / M."""

    pattern: str
    source: str
    genders: dict[str, str] = field(default_factory=dict)
    speaker: str | None = "{speaker}"
    odd_is_male: bool = False
    shared_speakers: bool = False

    def read(self, key: str) -> tuple[str | None, str | None] | None:
        """(speaker, gender) of ``key``, or None when the key does not follow the rule."""
        found = re.fullmatch(self.pattern, key)
        if found is None:
            return None
        groups = found.groupdict()
        speaker = self.speaker.format(**groups) if self.speaker is not None else None
        if self.odd_is_male:
            return speaker, MALE if int(groups["speaker"]) % 2 else FEMALE
        return speaker, self.genders.get(groups.get("sex") or speaker or "")


# CREMA-D's VideoDemographics.csv (91 actors: 48 male, 43 female): the women's ActorIDs.
CREMA_D_WOMEN = frozenset(
    f"10{n:02d}" for n in (2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 18, 20, 21, 24, 25, 28, 29, 30, 37, 43, 46, 47, 49,
                           52, 53, 54, 55, 56, 58, 60, 61, 63, 72, 73, 74, 75, 76, 78, 79, 82, 84, 89, 91)
)
CREMA_D_ACTORS = {f"{n}": FEMALE if f"{n}" in CREMA_D_WOMEN else MALE for n in range(1001, 1092)}

RULES: dict[str, SpeakerRule] = {
    # AESDD: "<emotion letter><sentence> (<actor>).wav", e.g. a03 (3) -> key a03-3; six actors.
    "aesdd": SpeakerRule(r"[afhsd]\d+-0*(?P<speaker>\d)[ab]?",
                          "the number after the sentence (the actor; a06 (5)b is a take of actor 5)",
                          shared_speakers=True),
    # ASED: "<emotion><n>-<sentence>-<repetition>-<...>-<speaker>", speaker last (01-65).
    "ased": SpeakerRule(r"[a-zA-Z]\d-\d+-\d+-\d+-(?P<speaker>\d+)", "the last field (the speaker, 1-65)",
                         shared_speakers=True),
    # ASVP-ESD: RAVDESS-like fields; the 6th is the actor (also its actor_<n> folder).
    "asvpesd": SpeakerRule(r"\d+-\d+-\d+-\d+-\d+-0*(?P<speaker>\d+)([- ]+\d+)*", "the 6th field (the actor)",
                            shared_speakers=True),
    # CaFE: "<actor>-<emotion>-<intensity>-<sentence>", actors 01-12.
    "cafe": SpeakerRule(r"(?P<speaker>\d\d)-[A-Z]-\d-\d", "the 1st field (the actor, 01-12)"),
    # CASIA: EmoBox's key is "<n>-<speaker name>-<emotion>"; four professional speakers.
    "casia": SpeakerRule(r"\d+-(?P<speaker>[a-z]+)-[a-z]+", "the 2nd field (the speaker's name)"),
    # CREMA-D: "<ActorID>_<sentence>_<emotion>_<level>"; sex from VideoDemographics.csv.
    "cremad": SpeakerRule(r"(?P<speaker>1\d{3})-[A-Z]{3}-[A-Z]{3}-[A-Z]{2}",
                          "the 1st field (the ActorID; sex from VideoDemographics.csv)", CREMA_D_ACTORS,
                          shared_speakers=True),
    # EMNS is a single-speaker corpus (one voice actor); EmoBox's own speaker list agrees.
    "emns": SpeakerRule(r"recorded_audio\w*", "EMNS has one speaker", speaker="emns", shared_speakers=True),
    # EmoDB: characters 1-2 are the speaker; Burkhardt et al. 2005 list the ten speakers' sexes.
    "emodb": SpeakerRule(r"(?P<speaker>\d\d)[ab]\d\d[A-Z][a-z]", "characters 1-2 of the key (the speaker)",
                         {"03": MALE, "08": FEMALE, "09": FEMALE, "10": MALE, "11": MALE, "12": MALE,
                          "13": FEMALE, "14": FEMALE, "15": MALE, "16": FEMALE}, shared_speakers=True),
    # EmoV-DB: "<speaker>-<emotion>-<n>"; Bea and Jenie are women, Josh and Sam men.
    "emovdb": SpeakerRule(r"(?P<speaker>bea|jenie|josh|sam)-[A-Za-z]+-\d+", "the 1st field (the speaker's name)",
                          {"bea": FEMALE, "jenie": FEMALE, "josh": MALE, "sam": MALE}, shared_speakers=True),
    # EMOVO: "<emotion>-<speaker>-<sentence>", speakers f1-f3 (women) and m1-m3 (men).
    "emovo": SpeakerRule(r"[a-z]{3}-(?P<speaker>(?P<sex>[fm])\d)-\w+", "the 2nd field (f1-f3, m1-m3)",
                         {"f": FEMALE, "m": MALE}),
    # eNTERFACE'05: "s<subject>_<emotion>_<sentence>.avi" (a few written s_<n>_ or without sentence).
    "enterface": SpeakerRule(r"s_?(?P<speaker>\d+)_[a-z]{2}(_\d+)?(avi)?\.avi", "the subject number after 's'",
                              shared_speakers=True),
    # ESD: "<speaker>_<utterance>", speakers 0001-0020.
    "esd": SpeakerRule(r"(?P<speaker>00\d\d)-\d{6}", "the 1st field (the speaker, 0001-0020)"),
    # IEMOCAP: "Ses<nn><F|M>_<dialog>_<F|M><n>": the last letter says who speaks; the session's
    # actor of that sex is the speaker.
    "iemocap": SpeakerRule(r"(?P<session>Ses\d\d)[FM]_\w+_(?P<sex>[FM])\d+", "session and the sex letter of the "
                           "utterance (Ses01F_impro04_M001 -> Ses01M)", {"F": FEMALE, "M": MALE},
                           speaker="{session}{sex}"),
    # JL-corpus: "<female|male><n>_<emotion>_<sentence>_<take>"; two women, two men.
    "jlcorpus": SpeakerRule(r"(?P<speaker>(?P<sex>female|male)\d)-[a-z]+-\w+-\d", "the 1st field (female1 ... male2)",
                            {"female": FEMALE, "male": MALE}),
    # MEAD: "<W|M><nnn>/..."; W is a woman, M a man.
    "mead": SpeakerRule(r"(?P<speaker>(?P<sex>[WM])\d{3})-[a-z]+-level-\d-\d+", "the 1st field (W = woman, M = man)",
                        {"W": FEMALE, "M": MALE}, shared_speakers=True),
    # MESD: "<emotion>_<voice>_<corpus>_<word>": the voice type F (adult woman), M (adult man)
    # or C (child) names a group of speakers, not one, so it gives gender only.
    "mesd": SpeakerRule(r"[A-Za-z]+_(?P<sex>[FMC])_[AB]_.+", "no speaker (the voice type names a group)",
                        {"F": FEMALE, "M": MALE}, speaker=None),
    # Oréau: EmoDB-like "<speaker><a><sentence><emotion><version>", characters 1-2 the speaker.
    "oreau": SpeakerRule(r"(?P<speaker>\d\d)[a-z]\d\d[A-Z][a-z]", "characters 1-2 of the key (the speaker)",
                         shared_speakers=True),
    # PAVOQUE is read by one male speaker.
    "pavoque": SpeakerRule(r".+", "PAVOQUE has one speaker", {"pavoque": MALE},
                           speaker="pavoque", shared_speakers=True),
    # Polish: "<speaker>.<emotion>_<word>_<take>", speakers m1-m5.
    "polish": SpeakerRule(r"(?P<speaker>m\d)\.[ans]_\w+_\d", "the part before '.' (m1-m5)"),
    # RAVDESS: 7 fields, the 7th is the actor; odd-numbered actors are men, even women.
    "ravdess": SpeakerRule(r"\d\d-\d\d-\d\d-\d\d-\d\d-\d\d-(?P<speaker>\d\d)", "the 7th field (the actor; odd = male)",
                           odd_is_male=True),
    # SAVEE: "<speaker>_<emotion><n>", four male speakers DC, JE, JK, KL.
    "savee": SpeakerRule(r"(?P<speaker>DC|JE|JK|KL)-[a-z]+\d\d", "the 1st field (DC, JE, JK, KL; all men)",
                         {"DC": MALE, "JE": MALE, "JK": MALE, "KL": MALE}),
    # ShEMO: "<F|M><nn><emotion><nn>": sex letter and speaker number.
    "shemo": SpeakerRule(r"(?P<speaker>(?P<sex>[FM])\d\d)[A-Z]\d\d", "characters 1-3 (sex letter + speaker number)",
                         {"F": FEMALE, "M": MALE}, shared_speakers=True),
    # SUBESCO: "<F|M>_<nn>_<NAME>_S_<sentence>_<EMOTION>_<take>".
    "subesco": SpeakerRule(r"(?P<speaker>(?P<sex>[FM])_\d\d)_[A-Z]+_S_\d+_[A-Z]+_\d\]?", "the 1st two fields (F_01 ... M_10)",
                           {"F": FEMALE, "M": MALE}),
    # TESS: "<OAF|YAF>_<word>_<emotion>": the older and the younger actress.
    "tess": SpeakerRule(r"(?P<speaker>OAF|YAF)-\w+-[a-z]+", "the 1st field (OAF, YAF; both women)",
                        {"OAF": FEMALE, "YAF": FEMALE}, shared_speakers=True),
    # TurEV-DB: "<actor>_<emotion>_<word>.wav", actors by four-digit number.
    "turevdb": SpeakerRule(r"(?P<speaker>\d{4})_[a-z]{2}_\w+\.wav", "the 1st field (the actor)", shared_speakers=True),
    # URDU: "S<M|F><n>_F<n>_<emotion><n>": speaker with sex letter.
    "urdu": SpeakerRule(r"(?P<speaker>S(?P<sex>[MF])\d+)_F\d+_[AHNS]\d+", "the 1st field (SM<n> man, SF<n> woman)",
                        {"M": MALE, "F": FEMALE}, shared_speakers=True),
}

# Datasets whose keys hold no speaker, and why (their speakers are unknown unless STM_SPEAKERS
# lists them and EmoBox's data.seg.wrd.stm is in the data folder).
NO_SPEAKER_IN_KEYS: dict[str, str] = {
    "emozionalmente": "keys are recording timestamps; the speaker is in the corpus's metadata.csv",
    "m3ed": "keys are <series>_<episode>_<utterance>; the speaker is in M3ED's annotation",
    "meld": "keys are <dialogue>_<utterance>-<split>; the speaker is in MELD's csv files",
    "mer2023": "MER2023 publishes no speaker ids (keys are sample numbers)",
    "msppodcast": "keys are <podcast>_<segment>; a podcast is not a speaker (use the msp_podcast protocol)",
    "resd": "keys name a dialogue and its two emotions, not which actor speaks",
}

# EmoBox's data.seg.wrd.stm lines are "<key> <channel> <speaker> <start> <end> <tags> <label>".
# Its speaker column is used for these datasets only, where it holds the corpus's own speakers
# (MELD's character names, M3ED's <series>_<character>, Emozionalmente's hashed actor ids);
# elsewhere it holds a group (mesd), the utterance itself (mer2023), the dialog's first actor
# (iemocap) or a path cut at a space (jlcorpus). The value says whether EmoBox's folds share
# speakers between train and test (measured on its files: MELD 69 of 100 test speakers,
# Emozionalmente 315 of 329; M3ED's splits are whole TV series, so no character is shared).
STM_SPEAKERS: dict[str, bool] = {"meld": True, "emozionalmente": True, "m3ed": False}
STM_FILE = "data.seg.wrd.stm"
