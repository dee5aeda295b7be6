"""Dependency order of tools (copilot.tools.ordering): one helper on graphlib for the planner,
the graph's execute node, bulk analysis and Ray analysis."""

from __future__ import annotations

import logging

import pytest

from copilot.tools.ordering import layers_of, order_of

USES = {
    "cxr_classifier": (),
    "lesion_segmenter": ("cxr_classifier",),
    "retriever": ("cxr_classifier",),
    "vqa": ("cxr_classifier",),
    "report_generator": ("cxr_classifier", "lesion_segmenter", "retriever"),
    "lung_nodule_detector": (),
}


def uses(name: str) -> tuple[str, ...]:
    return USES.get(name, ())


def test_dependencies_come_first() -> None:
    assert order_of(USES, uses) == [
        "cxr_classifier",
        "lesion_segmenter",
        "lung_nodule_detector",
        "retriever",
        "vqa",
        "report_generator",
    ]


def test_order_does_not_depend_on_the_order_given() -> None:
    names = ["vqa", "report_generator", "retriever", "cxr_classifier", "lesion_segmenter"]
    assert order_of(names, uses) == order_of(reversed(names), uses) == order_of(set(names), uses)


def test_only_the_tools_given_constrain_the_order() -> None:
    # report_generator uses cxr_classifier and lesion_segmenter, which are not being ordered
    assert order_of(["retriever", "report_generator"], uses) == ["retriever", "report_generator"]
    assert order_of(["report_generator", "vqa"], uses) == ["report_generator", "vqa"]


def test_layers_keep_the_order_given_within_a_layer() -> None:
    plan = ["cxr_classifier", "vqa", "retriever", "lesion_segmenter", "report_generator"]
    assert layers_of(plan, uses) == [
        ["cxr_classifier"],
        ["vqa", "retriever", "lesion_segmenter"],
        ["report_generator"],
    ]
    assert layers_of(["vqa", "vqa", "lung_nodule_detector"], uses) == [["vqa", "lung_nodule_detector"]]


def test_a_tool_never_waits_for_itself() -> None:
    assert order_of(["a"], lambda n: ["a"]) == ["a"]


def test_a_cycle_is_logged_and_every_tool_still_placed_once(caplog: pytest.LogCaptureFixture) -> None:
    cyclic = {"a": ("b",), "b": ("a",), "c": ("a",), "d": ()}
    with caplog.at_level(logging.WARNING, logger="copilot.tools.ordering"):
        order = order_of(cyclic, cyclic.__getitem__)
        layers = layers_of(["c", "b", "a", "d"], cyclic.__getitem__)
    assert order == ["a", "b", "c", "d"]
    assert layers == [["b", "a", "d"], ["c"]]
    assert "use each other" in caplog.text
