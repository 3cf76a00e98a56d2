"""by_name: the one reading of arguments given per model input or output, and its messages."""

import re

import numpy as np
import pytest

from dagjax._graph import by_name

NAMES = ["age", "income", "gender"]
A, B, C = np.zeros(2), np.ones(2), np.full(2, 2.0)


def test_a_dict_a_list_and_one_value_give_a_list_in_names_order():
    assert by_name({"b": 2, "a": 1}, ["a", "b"], "x", kind="input") == [1, 2]
    assert by_name((1, 2), ["a", "b"], "x", kind="input") == [1, 2]
    assert by_name(7, ["a"], "x", kind="input") == [7]
    assert by_name({"income": 0.5}, NAMES, "loss_weights", fill=1.0) == [1.0, 0.5, 1.0]
    assert by_name("mse", NAMES, "loss", fill=None, broadcast=True) == ["mse"] * 3


def test_without_names_the_structure_gives_its_own_order():
    assert by_name({"b": 2, "a": 1}, None, "outputs") == [1, 2]  # Keras flattens a dict by sorted key
    assert by_name([3, 1], None, "outputs") == [3, 1]
    assert by_name(5, None, "outputs") == [5]


def test_one_name_reads_a_list_of_numbers_as_the_one_array():
    assert by_name([A], ["x"], "x", kind="input", arrays=True)[0] is A
    assert by_name([None], ["out"], "y", fill=None, arrays=True) == [None]
    assert by_name([[1.0], [2.0]], ["x"], "x", kind="input", arrays=True) == [[[1.0], [2.0]]]
    assert by_name(["mse"], ["out"], "loss", fill=None) == ["mse"]  # not arrays: a list is the entries


def test_needed_names_a_list_of_just_them_and_one_value_for_the_only_one():
    needed = [True, False, True]
    assert by_name([A, C], NAMES, "y", fill=None, arrays=True, needed=needed) == [A, None, C]
    assert by_name([A, B, C], NAMES, "y", fill=None, arrays=True, needed=needed) == [A, B, C]
    assert by_name(B, NAMES, "y", fill=None, arrays=True, needed=[False, True, False]) == [None, B, None]


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (
            {"a": A, "bb": B},
            {"kind": "input", "arrays": True, "model": "m"},
            "`x` is a dict whose keys do not match the input names: missing ['b'], unknown ['bb']; "
            "model 'm' expects 2 named input(s) with keys ['a', 'b'].",
        ),
        (
            [A],
            {"kind": "input", "arrays": True, "model": "m"},
            "`x` is a list of 1; model 'm' expects 2 named input(s) with keys ['a', 'b']. Pass one entry per "
            "input, or a dict keyed by input name.",
        ),
        (
            A,
            {"kind": "input", "arrays": True, "model": "m"},
            "`x` is one array; model 'm' expects 2 named input(s) with keys ['a', 'b'].",
        ),
    ],
)
def test_input_errors_name_the_argument_the_names_at_fault_and_the_valid_names(value, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        by_name(value, ["a", "b"], "x", **kwargs)


@pytest.mark.parametrize(
    "value, what, kwargs, message",
    [
        ({"incme": A}, "y", {"fill": None}, "`y` is a dict naming unknown outputs ['incme']; the model"),
        (["mse"] * 2, "loss", {"fill": None}, "`loss` is a list of 2 entries; the model has 3 outputs"),
        (1.0, "loss_weights", {"fill": 1.0}, "`loss_weights` is one value; the model has 3 outputs"),
        ([A, B], "the batch's targets", {"fill": None, "arrays": True}, "targets are a list of 2"),
        (
            [A],
            "y",
            {"fill": None, "arrays": True, "needed": [True, True, False]},
            "of which ['age', 'income'] need an entry. Pass one entry per output (None where an output has "
            "none), one per output that needs one, or a dict keyed by output name.",
        ),
    ],
)
def test_output_errors_name_the_argument_the_names_at_fault_and_the_valid_names(value, what, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        by_name(value, NAMES, what, **kwargs)
    assert str(NAMES) in str(err.value)
