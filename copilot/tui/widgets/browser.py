"""The study browser: a filterable tree of patients, studies and series, plus skipped files."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Tree

from copilot.study.model import Study, StudySet


class StudyBrowser(Vertical):
    """Patients > studies > series; selecting a study or series posts ``StudySelected``."""

    DEFAULT_CSS = """
    StudyBrowser { width: 38; border-right: solid $primary-background; }
    StudyBrowser Input { margin: 0 0 1 0; }
    StudyBrowser Tree { height: 1fr; }
    """

    class StudySelected(Message):
        """A study (and optionally a series) was chosen."""

        def __init__(self, study: Study, series_uid: str | None) -> None:
            super().__init__()
            self.study = study
            self.series_uid = series_uid

    def __init__(self) -> None:
        super().__init__(id="browser")
        self.study_set: StudySet | None = None
        self.selected_uid: str | None = None

    def compose(self) -> ComposeResult:
        """Filter box above the tree."""
        yield Input(placeholder="Filter (patient, date, modality, description)", id="filter")
        tree: Tree[tuple[Study, str | None]] = Tree("Studies", id="tree")
        tree.show_root = False
        yield tree

    def show(self, study_set: StudySet, query: str = "") -> None:
        """(Re)build the tree; header text is shown as plain text, never markup."""
        self.study_set = study_set
        tree = self.query_one(Tree)
        tree.clear()
        q = query.lower().strip()
        patients: dict[str, list[Study]] = {}
        for study in study_set.studies:
            haystack = " ".join(
                [study.patient_id, study.study_date, study.description, *study.modalities]
            ).lower()
            if q and q not in haystack:
                continue
            patients.setdefault(study.patient_id or "(no patient id)", []).append(study)
        # Large folders open collapsed: expanding thousands of nodes costs seconds of layout.
        expand = len(patients) <= 50
        for patient, studies in patients.items():
            pnode = tree.root.add(Text(f"{patient}"), expand=expand)
            for study in studies:
                label = Text(
                    f"{study.study_date or '—'} {study.description or ''} [{', '.join(study.modalities)}]"
                )
                snode = pnode.add(label, data=(study, None), expand=True)
                for series in study.series:
                    views = f" {series.view}" if series.view else ""
                    count = len(series.instances)
                    text = f"{series.modality}{views} · {count} image(s) {series.description}"
                    snode.add_leaf(Text(text), data=(study, series.series_uid))

        if self.selected_uid is not None:
            self.highlight(self.selected_uid)

    def visible_studies(self) -> list[Study]:
        """The studies in the tree (after the filter), in display order."""
        tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
        return [
            snode.data[0]
            for pnode in tree.root.children
            for snode in pnode.children
            if snode.data is not None
        ]

    def highlight(self, study_uid: str | None) -> None:
        """Put the tree's cursor on the study being asked about (or nowhere), so the tree
        never points at another study than the banner names."""
        self.selected_uid = study_uid
        tree: Tree[tuple[Study, str | None]] = self.query_one(Tree)
        for pnode in tree.root.children:
            for snode in pnode.children:
                if snode.data is not None and snode.data[0].study_uid == study_uid:
                    pnode.expand()
                    self.call_after_refresh(tree.move_cursor, snode)
                    return
        self.call_after_refresh(tree.move_cursor, None)

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        if self.study_set is not None:
            self.show(self.study_set, event.value)

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[tuple[Study, str | None]]) -> None:
        if event.node.data is not None:
            study, series_uid = event.node.data
            self.post_message(self.StudySelected(study, series_uid))
