"""The recognizer registry: the recognizers a redactor may run, registered per entity type, after Presidio's
``RecognizerRegistry``. The built-in ones are loaded by one method; a user adds or removes their own.

How to add a recognizer (in the config or in code) and what its trigger is for: docs/redaction.md ("Recognizer
registry").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer

from spanguard.processors.redaction.config import RecognizerSpec
from spanguard.processors.redaction.entities import RESERVED_ENTITIES
from spanguard.processors.redaction.recognizers import builtin_recognizers
from spanguard.processors.redaction.screen import ANY_TEXT, RegexTrigger, TriggerFunction

__all__ = ["RecognizerRegistry", "RegisteredRecognizer", "builtin_registry"]


@dataclass(frozen=True, slots=True)
class RegisteredRecognizer:
    """A recognizer as the registry holds it: for one of its entity types, with the trigger that says when it runs."""

    recognizer: EntityRecognizer
    entity: str
    trigger: TriggerFunction


class RecognizerRegistry:
    """The recognizers a :class:`~spanguard.processors.redaction.Redactor` may run, registered per entity type.

    As in Presidio: :meth:`load_builtin_recognizers` loads spanguard's (secrets, Presidio's identifiers, the PII
    recognizers), :meth:`add_recognizer` adds anyone's, :meth:`remove_recognizer` removes by name, and the redactor
    asks :meth:`get_recognizers` for those of the types it detects, in the order they were added. A redactor reads
    the registry once, when it is built.
    """

    def __init__(self, recognizers: Iterable[EntityRecognizer | RecognizerSpec] = ()) -> None:
        self._entries: list[RegisteredRecognizer] = []
        for recognizer in recognizers:
            self.add_recognizer(recognizer)

    def load_builtin_recognizers(self) -> None:
        """Add every built-in recognizer, in the order they run."""
        for recognizer in builtin_recognizers():
            self.add_recognizer(recognizer)

    def add_recognizer(
        self, recognizer: EntityRecognizer | RecognizerSpec, *, trigger: TriggerFunction | None = None
    ) -> None:
        """Register ``recognizer`` (a Presidio ``EntityRecognizer``, or the config's :class:`RecognizerSpec`) for each
        of its entity types.

        ``trigger`` (default: the recognizer's ``trigger`` attribute) is a cheap test every text it can match passes,
        such as a :class:`~spanguard.processors.redaction.Trigger`; without one, a pattern recognizer's own patterns
        are its trigger, and any other recognizer runs on every text that reaches the recognizers.
        """
        if isinstance(recognizer, RecognizerSpec):
            recognizer = recognizer.build()
        if not isinstance(recognizer, EntityRecognizer):
            raise TypeError(f"a recognizer is a presidio_analyzer.EntityRecognizer, not {type(recognizer).__name__}")
        entities = list(dict.fromkeys(recognizer.supported_entities or ()))
        if not entities:
            raise ValueError(f"recognizer {_name(recognizer)!r} supports no entity type")
        reserved = sorted(RESERVED_ENTITIES.intersection(entities))
        if reserved:
            raise ValueError(f"recognizer {_name(recognizer)!r}: {', '.join(reserved)} is reserved")
        chosen = trigger or getattr(recognizer, "trigger", None) or _own_trigger(recognizer)
        self._entries.extend(RegisteredRecognizer(recognizer, entity, chosen) for entity in entities)

    def remove_recognizer(self, name: str) -> None:
        """Remove every recognizer whose ``name`` is ``name``; KeyError when there is none."""
        kept = [entry for entry in self._entries if _name(entry.recognizer) != name]
        if len(kept) == len(self._entries):
            raise KeyError(f"no recognizer named {name!r}; registered: {', '.join(self.names)}")
        self._entries = kept

    def get_recognizers(self, entities: Iterable[str]) -> list[RegisteredRecognizer]:
        """The registered recognizers of ``entities``, in the order they were added."""
        wanted = set(entities)
        return [entry for entry in self._entries if entry.entity in wanted]

    @property
    def supported_entities(self) -> tuple[str, ...]:
        """The entity types some registered recognizer finds."""
        return tuple(dict.fromkeys(entry.entity for entry in self._entries))

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the registered recognizers."""
        return tuple(dict.fromkeys(_name(entry.recognizer) for entry in self._entries))

    def copy(self) -> RecognizerRegistry:
        """A registry holding the same recognizers, to change without changing this one."""
        other = RecognizerRegistry()
        other._entries = list(self._entries)
        return other

    def __iter__(self) -> Iterator[RegisteredRecognizer]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def builtin_registry() -> RecognizerRegistry:
    """A new registry holding every built-in recognizer."""
    registry = RecognizerRegistry()
    registry.load_builtin_recognizers()
    return registry


def _name(recognizer: EntityRecognizer) -> str:
    return str(recognizer.name)  # type: ignore[has-type]  # set in Presidio's __init__, typed there by branch


def _own_trigger(recognizer: EntityRecognizer) -> TriggerFunction:
    patterns: list[Pattern] = getattr(recognizer, "patterns", None) or []
    if isinstance(recognizer, PatternRecognizer) and patterns:
        return RegexTrigger([p.regex for p in patterns], recognizer.global_regex_flags or 0)
    return ANY_TEXT
