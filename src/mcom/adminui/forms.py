"""Forms of the MCOM pages: message-log filters, connector-log filters, scoped configuration."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet

from mcom.adminui import logtail
from mcom.commerce import config
from mcom.commerce.config import ConfigPath
from mcom.commerce.models import ConfigValue, Store
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.selection import MessageFilter

ALL = [("", "All")]


class DateInput(forms.DateInput):
    input_type = "date"


class MessageFilterForm(forms.Form):
    """GET filters of the message log; every field optional."""

    q = forms.CharField(required=False, label="Search", help_text="Entity key, message id or log id")
    direction = forms.ChoiceField(required=False, choices=ALL + LoggedMessage.DIRECTIONS, label="Direction")
    topic = forms.ChoiceField(required=False, label="Topic")
    status = forms.ChoiceField(required=False, choices=ALL + LoggedMessage.STATUSES, label="Status")
    date_from = forms.DateField(required=False, label="Created from", widget=DateInput)
    date_to = forms.DateField(required=False, label="Created to", widget=DateInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        topics = LoggedMessage.objects.order_by("topic").values_list("topic", flat=True).distinct()
        field = self.fields["topic"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = ALL + [(t, t) for t in topics]

    def _value(self, name: str) -> Any:
        return self.cleaned_data.get(name) if self.is_valid() else None

    def filter(self, qs: QuerySet[LoggedMessage], *, with_status: bool = True) -> QuerySet[LoggedMessage]:
        """``qs`` narrowed by the valid filters (``with_status=False`` ignores the status filter)."""
        if not self.is_valid():
            return qs
        return qs.filter(self.selection(with_status=with_status).q())

    def selection(self, *, with_status: bool = True) -> MessageFilter:
        """The valid filters as a :class:`~mcom.service_bus.selection.MessageFilter` (empty when invalid)."""
        if not self.is_valid():
            return MessageFilter()
        data = self.cleaned_data
        return MessageFilter(
            direction=data.get("direction") or "",
            topic=data.get("topic") or "",
            statuses=[data["status"]] if with_status and data.get("status") else [],
            after=datetime.combine(data["date_from"], time.min, tzinfo=UTC) if data.get("date_from") else None,
            before=(datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=UTC)
                    if data.get("date_to") else None),
            search=data.get("q") or "",
        )


class LogFilterForm(forms.Form):
    entity = forms.CharField(required=False, max_length=191, label="Order, entity or message",
                             help_text="Text to find, e.g. 000000004, order:000000004 or message 812")
    level = forms.ChoiceField(
        required=False,
        label="Minimum level",
        choices=[("", "All levels"), *[(lv, lv) for lv in logtail.LEVELS]],
    )
    lines = forms.TypedChoiceField(
        required=False,
        label="Last lines",
        coerce=int,
        empty_value=None,
        initial=logtail.DEFAULT_LINES,
        choices=[(n, str(n)) for n in logtail.LINE_COUNTS],
    )


# ----------------------------------------------------------------------------------- configuration

YES_NO = [("1", "Yes"), ("0", "No")]


def field_name(path: str) -> str:
    """Form field name of a configuration path (``mcom/general/x`` → ``mcom__general__x``)."""
    return path.replace("/", "__")


def inherit_name(path: str) -> str:
    return field_name(path) + "__use_default"


def _field_for(spec: ConfigPath, current: Any) -> forms.Field:
    common: dict[str, Any] = {"label": spec.label, "help_text": spec.help, "required": False}
    if spec.kind == "bool":
        return forms.ChoiceField(choices=YES_NO, **common)
    if spec.kind == "int":
        return forms.CharField(widget=forms.NumberInput(attrs={"min": 1, "class": "vIntegerField"}), **common)
    if spec.kind == "list" and spec.choices is not None:
        options = list(dict.fromkeys([*spec.choices(), *(current or [])]))
        return forms.MultipleChoiceField(
            choices=[(o, o) for o in options],
            widget=forms.SelectMultiple(attrs={"size": min(len(options), 8)}),
            **common,
        )
    if spec.kind == "list":
        return forms.CharField(widget=forms.TextInput(attrs={"class": "vTextField"}), **common)
    attrs = {"class": "vURLField" if spec.kind == "url" else "vTextField"}
    if spec.kind == "url":
        attrs["inputmode"] = "url"
    return forms.CharField(widget=forms.TextInput(attrs=attrs), **common)


def _as_initial(spec: ConfigPath, value: Any) -> Any:
    if spec.kind == "bool":
        return "1" if value else "0"
    if spec.kind == "list" and spec.choices is None:
        return ",".join(value or [])
    if spec.kind == "list":
        return list(value or [])
    return "" if value is None else str(value)


class ConfigForm(forms.Form):
    """Every path of :data:`mcom.commerce.config.PATHS` for one scope (default, or one store).

    In store scope each store-scoped path gets a "Use default" checkbox; paths that exist only in
    the default scope are shown read-only. Values are validated with the same parser the CLI
    uses (``config.parse_value``) so the admin and ``config:set`` accept exactly the same input.
    """

    def __init__(self, data: Any = None, *, store: Store | None = None) -> None:
        self.store = store
        stored = (
            {
                r.path: r.value
                for r in ConfigValue.objects.filter(scope=ConfigValue.SCOPE_STORE, scope_code=store.code)
            }
            if store
            else {}
        )
        self.inherited: dict[str, bool] = {}
        initial: dict[str, Any] = {}
        fields: dict[str, forms.Field] = {}
        for spec in config.PATHS.values():
            current = config.get(spec.path, store)
            name = field_name(spec.path)
            fields[name] = _field_for(spec, current)
            initial[name] = _as_initial(spec, current)
            if store is not None:
                if spec.store_scoped:
                    self.inherited[spec.path] = spec.path not in stored
                    fields[inherit_name(spec.path)] = forms.BooleanField(required=False, label="Use default")
                    initial[inherit_name(spec.path)] = spec.path not in stored
                else:
                    fields[name].disabled = True
        super().__init__(data, initial=initial)
        self.fields.update(fields)

    def uses_default(self, path: str) -> bool:
        """Whether the submitted form keeps ``path`` inherited from the default scope."""
        return bool(self.cleaned_data.get(inherit_name(path))) if self.store is not None else False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for spec in config.PATHS.values():
            name = field_name(spec.path)
            if name not in cleaned or self.fields[name].disabled or self.uses_default(spec.path):
                continue
            raw = cleaned[name]
            text = ",".join(raw) if isinstance(raw, list) else str(raw or "")
            try:
                cleaned[name] = config.parse_value(spec, text)
            except config.ConfigPathError as e:
                self.add_error(name, str(e).split(": ", 1)[-1])
        return cleaned

    def rows(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """``[(group, [row, …]), …]`` in the seed's group order, for the template."""
        groups: dict[str, list[dict[str, Any]]] = {g: [] for g in config.GROUPS}
        for spec in config.PATHS.values():
            name = field_name(spec.path)
            row: dict[str, Any] = {"spec": spec, "field": self[name], "inherit": None, "default_only": False}
            if self.store is not None:
                if spec.store_scoped:
                    row["inherit"] = self[inherit_name(spec.path)]
                else:
                    row["default_only"] = True
            groups.setdefault(spec.group, []).append(row)
        return [(g, rows) for g, rows in groups.items() if rows]

    def save(self) -> list[str]:
        """Write the changes of this scope; returns the paths written or reset. Raises ConfigPathError."""
        changed: list[str] = []
        scope = ConfigValue.SCOPE_STORE if self.store else ConfigValue.SCOPE_DEFAULT
        code = self.store.code if self.store else ""
        for spec in config.PATHS.values():
            name = field_name(spec.path)
            if self.fields[name].disabled:
                continue
            if self.store is not None and spec.store_scoped:
                was_inherited = self.inherited[spec.path]
                if self.uses_default(spec.path):
                    if not was_inherited:
                        config.unset(spec.path, scope=scope, scope_code=code)
                        changed.append(spec.path)
                    continue
                if not was_inherited and name not in self.changed_data:
                    continue
            elif name not in self.changed_data:
                continue
            config.set_value(spec.path, self.cleaned_data[name], scope=scope, scope_code=code)
            changed.append(spec.path)
        return changed
