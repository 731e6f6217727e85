"""Names as people write them, resolved to catalogue names.

A user or a measurement file writes "Snapdragon 8 Elite QRD", "NVIDIA RTX 4080 16GB", "Apple M2 Pro
(19-core GPU)", "rtx5090" or "meta-llama/Llama-3.2-3B-Instruct-Q4_K_M.gguf"; the catalogues' names
are ``qualcomm-snapdragon-8-elite-gpu``, ``nvidia-rtx-4080``, ``apple-m2-pro-gpu``,
``nvidia-rtx-5090``, ``llama-3.2-3b``. One resolver maps the first kind of name to the second for any
table of (name, display name) entries; a ``NameRules`` says what a kind of name may carry around the
part that identifies it (``DEVICE_RULES``, ``MODEL_RULES``).

How a text is read (an entry's name and display name are read the same way):

1. Lower case, ``+`` read as "plus"; the rules' noise removed (an organisation prefix, quantization
   suffixes, memory types, clocks, power modes).
2. Qualifiers taken out: a memory size (``16GB``), a core count (``19-core GPU``), a version
   (``v0.3``). They choose between entries; they do not name one.
3. The rest split into segments: the text outside parentheses, each parenthesized group and each of
   its comma-separated parts (a phone states its SoC in parentheses). A segment is a sequence of
   tokens, letters and numbers apart (``rtx5090`` reads as ``rtx 5090``); the rules' dropped words
   (vendors, "Founders Edition", "QRD", "-Instruct") are left out, and role words (GPU, CPU, NPU) are
   left out and remembered.

An entry's keys are its name and its display name outside parentheses, read so. Matches, best first:
the text spelled as the entry's name or display name, ignoring case, spacing and punctuation; a
segment equal to a key; with loose rules (devices), a segment that ends with a key, a host named
first ("MacBook Air M2"); a key's end, its product line left out ("MI300X", "AGX Thor"); a key's
beginning, its form factor left out ("A100"). The best level any entry reaches gives the candidates.
Then, in order:

- if the text names a role, entries of another role are out; if a qualifier is about a role
  ("8-core GPU"), entries of that role come first; if candidates that share a key still differ in
  role, the rules' default role wins: an SoC written plainly is its GPU;
- an entry stating a qualifier that the text states otherwise is out: the catalogue's 19-core
  M2 Pro GPU is not a binned 16-core one, nor an 8 GB board a 16 GB one;
- for a qualifier the text does not state, among candidates that share a key, an entry whose name
  states none is the default: ``raspberry-pi-5`` before ``raspberry-pi-5-16gb``.

One candidate left: its name. None: an InputError naming the three closest entries (and what ruled
out the one the text otherwise names). Several: an InputError naming them.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from llm_roofline.core.errors import InputError, ambiguous_name, unknown_name

Entry = tuple[str, str]  # (catalogue name, display name)
Fact = tuple[str, str, str | None]  # (qualifier label, value, the role it is about or None)

# Match levels, best first.
_SPELLED, _KEY, _AFTER_HOST, _LINE_OMITTED, _ABBREVIATED = range(5)


@dataclass(frozen=True, slots=True)
class Qualifier:
    """Something a name may state besides what it names: a memory size, a core count, a version.

    ``pattern`` captures ``value`` and may capture ``unit`` (scaled by ``scale``) and ``role`` (the
    role the fact is about: "14-core CPU"); ``shown`` formats a value for messages.
    """

    label: str
    pattern: re.Pattern[str]
    shown: str
    numeric: bool = True
    scale: tuple[tuple[str, float], ...] = ()

    def facts(self, text: str) -> set[Fact]:
        out = set()
        for match in self.pattern.finditer(text):
            groups = match.groupdict()
            value = groups["value"]
            if self.numeric:
                value = format(float(value) * dict(self.scale).get(groups.get("unit") or "", 1.0), "g")
            out.add((self.label, value, groups.get("role")))
        return out


@dataclass(frozen=True, slots=True)
class NameRules:
    """What a kind of name may carry around the words that identify it."""

    noise: re.Pattern[str]  # removed before anything else
    dropped_words: frozenset[str]  # tokens left out wherever they stand: vendors, editions, fine-tune tags
    qualifiers: tuple[Qualifier, ...]
    role_words: tuple[tuple[str, str], ...] = ()  # token -> role it names
    default_role: str | None = None
    loose: bool = False  # also match a key after a host name, a key's end and a key's beginning


_WORD_START = r"(?<![a-z0-9.])"

MEMORY = Qualifier("memory", re.compile(_WORD_START + r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>gb|gib|tb)(?![a-z])"),
                   "{} GB", scale=(("tb", 1000.0),))
CORES = Qualifier("cores", re.compile(_WORD_START
                                      + r"(?P<value>\d+)[- ]?core(?![a-z])(?:\s*(?P<role>gpu|cpu|npu)\b)?"), "{}-core")
VERSION = Qualifier("version", re.compile(_WORD_START + r"v(?P<value>\d+(?:\.\d+)*)(?![a-z0-9])"), "v{}",
                    numeric=False)

DEVICE_RULES = NameRules(
    noise=re.compile(r"""(?x)
        \b(?:lp)?ddr\d+x?\b | \bgddr\d+x?\b | \bhbm\d+e?\b   # memory technology
      | \b\d+(?:\.\d+)?\s*[mg]hz\b                         # clocks
      | \b\d+(?:\.\d+)?\s*w\b                              # power modes: 15W
      | \bmobile\s+platform\b                              # Qualcomm's product names
    """),
    dropped_words=frozenset({
        "nvidia", "geforce", "amd", "apple", "qualcomm", "intel", "mediatek",  # vendors
        "founders", "edition", "fe", "qrd", "reference", "developer", "dev", "kit", "devkit", "module",
        "som", "soc", "chip", "superchip", "board", "card", "graphics",
    }),
    qualifiers=(MEMORY, CORES),
    role_words=(("gpu", "gpu"), ("igpu", "gpu"), ("cpu", "cpu"), ("npu", "npu")),
    default_role="gpu",
    loose=True,
)

MODEL_RULES = NameRules(
    noise=re.compile(r"""(?x)
        ^[^/()]*/                                            # organisation: meta-llama/
      | \bi?q[1-8](?:_[a-z0-9]+)*\b                          # llama.cpp quant types: Q4_K_M, Q8_0, IQ4_XS
      | \b(?:bf16|fp16|fp32|fp8|f16|f32|int4|int8|nf4|mxfp4|w4a16|w8a8)\b
      | \b\d+[-_ ]?bits?\b                                   # -4bit, -bnb-4bit
      | [-_ ](?:25|26)(?:0[1-9]|1[0-2])\b                     # release dates of a refresh: -2507
    """),
    dropped_words=frozenset({
        "instruct", "chat", "it", "coder", "hf", "base", "pt", "thinking",  # fine-tunes have their base's shapes
        "gguf", "ggml", "awq", "gptq", "mlx", "bnb", "exl2", "onnx",  # quantized releases
        "meta",  # Meta-Llama-3-8B
    }),
    qualifiers=(VERSION,),
)


@dataclass(frozen=True, slots=True)
class _Reading:
    """A text read by the rules: what it spells, its segments, the roles it names, what it states."""

    spelled: str
    outside: tuple[str, ...]  # the segment outside parentheses
    segments: tuple[tuple[str, ...], ...]  # every non-empty segment, the outside one included
    roles: frozenset[str]
    facts: frozenset[Fact]


@dataclass(frozen=True, slots=True)
class _Known:
    """A catalogue entry as the resolver sees it."""

    name: str
    spelled: frozenset[str]
    keys: frozenset[tuple[str, ...]]
    role: str | None
    facts: frozenset[Fact]  # stated by the name or the display name
    name_facts: frozenset[Fact]  # stated by the name alone


def _read(text: str, rules: NameRules) -> _Reading:
    text = text.lower()
    spelled = re.sub(r"[^a-z0-9]", "", text)
    text = rules.noise.sub(" ", text.replace("+", " plus "))
    facts: set[Fact] = set()
    for qualifier in rules.qualifiers:
        facts |= qualifier.facts(text)
        text = qualifier.pattern.sub(" ", text)
    outside = re.sub(r"\([^()]*\)", " ", text)
    groups = re.findall(r"\(([^()]*)\)", text)
    parts = [outside, *outside.split(","), *(piece for group in groups for piece in (group, *group.split(",")))]
    role_of = dict(rules.role_words)
    roles = {role_of[token] for part in parts for token in _tokens(part) if token in role_of}
    segments: list[tuple[str, ...]] = []
    for part in parts:
        segment = tuple(token for token in _tokens(part) if token not in role_of and token not in rules.dropped_words)
        if segment and segment not in segments:
            segments.append(segment)
    outside_segment = tuple(token for token in _tokens(outside)
                            if token not in role_of and token not in rules.dropped_words)
    return _Reading(spelled, outside_segment, tuple(segments), frozenset(roles), frozenset(facts))


def _tokens(text: str) -> list[str]:
    """Runs of letters and numbers (decimals kept whole): "rtx5090" -> rtx, 5090; "qwen2.5" -> qwen, 2.5."""
    return re.findall(r"[a-z]+|\d+(?:\.\d+)*", text)


@functools.lru_cache(maxsize=16)
def _known(entries: tuple[Entry, ...], rules: NameRules,
           roles: tuple[tuple[str, str], ...]) -> Mapping[str, _Known]:
    """The entries read once per table (cached: read-only)."""
    role_of = dict(roles)
    out = {}
    for name, display in entries:
        by_name, by_display = _read(name, rules), _read(display, rules)
        role = role_of.get(name) or next(iter(sorted(by_name.roles or by_display.roles)), None)
        out[name] = _Known(name=name, spelled=frozenset({by_name.spelled, by_display.spelled}),
                           keys=frozenset(key for key in (by_name.outside, by_display.outside) if key), role=role,
                           facts=by_name.facts | by_display.facts, name_facts=by_name.facts)
    return out


def _level(text: _Reading, entry: _Known, loose: bool) -> int | None:
    """How well a text matches an entry (``_SPELLED`` best), or None."""
    if text.spelled in entry.spelled:
        return _SPELLED
    levels = []
    for segment in text.segments:
        for key in entry.keys:
            if segment == key:
                levels.append(_KEY)
            elif loose and len(segment) > len(key) and segment[-len(key):] == key:
                levels.append(_AFTER_HOST)
            elif loose and len(segment) < len(key) and key[-len(segment):] == segment:
                levels.append(_LINE_OMITTED)
            elif loose and len(segment) < len(key) and key[:len(segment)] == segment:
                levels.append(_ABBREVIATED)
    return min(levels, default=None)


def _stated(facts: Iterable[Fact], label: str, role: str | None) -> set[str]:
    """Values of a qualifier that facts state about an entry of ``role`` (a fact about no role is about any)."""
    return {value for fact_label, value, fact_role in facts if fact_label == label and fact_role in (None, role)}


def _conflict(text: _Reading, entry: _Known, rules: NameRules) -> str:
    """What the entry states otherwise than the text ("apple-m2-pro-gpu is 19-core"), or ""."""
    for qualifier in rules.qualifiers:
        asked = _stated(text.facts, qualifier.label, entry.role)
        has = _stated(entry.facts, qualifier.label, entry.role)
        if asked and has and asked.isdisjoint(has):
            return f"{entry.name} is {', '.join(qualifier.shown.format(v) for v in sorted(has))}"
    return ""


def _by_role(text: _Reading, candidates: list[_Known], rules: NameRules) -> list[_Known]:
    """The candidates of the role the text asks for: a role word is binding; a role a qualifier is
    about ("8-core GPU") is preferred; else, among entries that share a key, the default role."""
    if text.roles:
        return [entry for entry in candidates if entry.role is None or entry.role in text.roles]
    mentioned = {role for _, _, role in text.facts if role}
    candidates = [entry for entry in candidates if entry.role in mentioned] or candidates
    if len({entry.role for entry in candidates}) > 1 and _share_a_key(candidates):
        return [entry for entry in candidates if entry.role == rules.default_role] or candidates
    return candidates


def _share_a_key(entries: Sequence[_Known]) -> bool:
    return bool(frozenset.intersection(*(entry.keys for entry in entries)))


def _closest(text: _Reading, known: Mapping[str, _Known], among: Iterable[str], count: int = 3) -> list[str]:
    probe = "".join(token for segment in text.segments for token in segment) or text.spelled

    def likeness(name: str) -> float:
        spellings = {"".join(key) for key in known[name].keys} | {re.sub(r"[^a-z0-9]", "", name)}
        return max(difflib.SequenceMatcher(None, probe, spelling).ratio() for spelling in spellings)

    return sorted(among, key=lambda name: (-likeness(name), name))[:count]


MAX_NAME_CHARS = 256  # the longest catalogue name or display name is under 60 characters


def resolve(text: str, entries: Iterable[Entry], kind_word: str, rules: NameRules = DEVICE_RULES,
            roles: Mapping[str, str] | None = None) -> str:
    """The catalogue name ``text`` means, among ``entries`` (name, display name), by ``rules``.

    ``kind_word`` names the catalogue in errors ("hardware", "model"); ``roles``: each entry's role
    (a device's kind) where its names may not say it. Raises ``InputError`` for an unknown or
    ambiguous name, naming the closest entries.
    """
    entries = tuple(entries)
    wanted = text.strip()
    if not wanted:
        raise InputError(f"{kind_word} name is empty")
    if len(wanted) > MAX_NAME_CHARS:  # no catalogue name comes close; fuzzy matching would take seconds
        raise unknown_name(kind_word, wanted, (name for name, _ in entries), close=(),
                           why=f"longer than the {MAX_NAME_CHARS} characters a name may have")
    for name, display in entries:
        if wanted.lower() in (name.lower(), display.lower()):
            return name
    known = _known(entries, rules, tuple(sorted((roles or {}).items())))
    reading = _read(wanted, rules)
    levels = {name: level for name, entry in known.items()
              if (level := _level(reading, entry, rules.loose)) is not None}
    if not levels:
        raise unknown_name(kind_word, wanted, known, close=_closest(reading, known, known))
    best = min(levels.values())
    candidates = [known[name] for name, level in levels.items() if level == best]

    fitting = _by_role(reading, candidates, rules)
    if not fitting:
        why = "; ".join(sorted({f"{entry.name} is a {entry.role}" for entry in candidates}))
        raise unknown_name(kind_word, wanted, known, close=_closest(reading, known, known), why=why)
    ruled_out = [entry for entry in fitting if _conflict(reading, entry, rules)]
    fitting = [entry for entry in fitting if entry not in ruled_out]
    if not fitting:
        raise unknown_name(kind_word, wanted, known, close=_closest(reading, known, known),
                           why=_conflict(reading, ruled_out[0], rules))
    if len(fitting) > 1 and _share_a_key(fitting):
        for qualifier in rules.qualifiers:
            if not any(fact[0] == qualifier.label for fact in reading.facts):
                plain = [entry for entry in fitting if not _stated(entry.name_facts, qualifier.label, entry.role)]
                fitting = plain or fitting
    if len(fitting) == 1:
        return fitting[0].name
    raise ambiguous_name(kind_word, wanted, _closest(reading, known, [entry.name for entry in fitting]))


def resolve_device(text: str, kind: str | None = None) -> str:
    """The catalogue device ``text`` names (of ``kind`` "gpu", "cpu" or "npu" when given).

    An SoC named plainly ("Snapdragon 8 Elite") is its GPU entry; "Snapdragon 8 Elite CPU" or
    ``kind="cpu"`` picks the CPU.
    """
    from llm_roofline.inputs.device_files import (  # hardware.py resolves its names through here
        hardware_names,
        load_hardware,
    )

    specs = [load_hardware(name) for name in hardware_names()]
    specs = [spec for spec in specs if kind is None or spec.kind == kind]
    return resolve(text, [(spec.name, spec.display_name) for spec in specs], "hardware", DEVICE_RULES,
                   roles={spec.name: spec.kind for spec in specs})


def resolve_model(text: str, entries: Iterable[Entry]) -> str:
    """The catalogue model ``text`` names, among ``entries`` (name, display name): fine-tune, chat and
    quantization suffixes and organisation prefixes ignored, versions (``-v0.3``) kept."""
    return resolve(text, entries, "model", MODEL_RULES)
