"""The assertion helpers of Keras's ``keras.src.testing.TestCase`` that its functional tests use.

Written against dagjax's public API only; Keras's ``serialize_keras_object`` and friends are
looked up through the same import rewrite as the tests (so a name dagjax lacks fails there).
"""

from __future__ import annotations

import json
import shutil
import tempfile

import numpy as np
from absl.testing import parameterized

import dagjax as dj
from keras_compat import rewrite


def to_json_with_tuples(value) -> str:
    """JSON of a config that keeps tuples apart from lists (as Keras's helper)."""

    def encode(obj):
        if isinstance(obj, tuple):
            return {"__class__": "tuple", "__value__": [encode(e) for e in obj]}
        if isinstance(obj, list):
            return [encode(e) for e in obj]
        if isinstance(obj, dict):
            return {key: encode(v) for key, v in obj.items()}
        return obj

    return json.dumps(encode(value), sort_keys=True, indent=4)


def from_json_with_tuples(text: str):
    def decode(obj):
        if "__class__" in obj and "__value__" in obj:
            return tuple(obj["__value__"])
        return obj

    return json.loads(text, object_hook=decode)


class TestCase(parameterized.TestCase):
    maxDiff = None

    def setUp(self):
        dj.clear_session()  # Keras's TestCase clears the session before each test too

    def get_temp_dir(self) -> str:
        temp_dir = tempfile.mkdtemp()
        self.addCleanup(lambda: shutil.rmtree(temp_dir))
        return temp_dir

    def assertAllClose(self, actual, desired, atol=1e-6, rtol=1e-6, msg=None):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), atol=atol, rtol=rtol)

    def assertLen(self, iterable, expected_len, msg=None):
        self.assertEqual(len(iterable), expected_len, msg=msg)

    def run_class_serialization_test(self, instance, custom_objects=None):
        """Keras's check: ``get_config``/``from_config`` and ``serialize``/``deserialize`` round-trip."""
        saving = rewrite.resolve("keras.src.saving", None)
        cls = instance.__class__
        config_json = to_json_with_tuples(instance.get_config())
        ref_dir = set(dir(instance)) - {"__annotations__"}
        with saving.custom_object_scope(custom_objects):
            revived = cls.from_config(instance.get_config())
        self.assertEqual(config_json, to_json_with_tuples(revived.get_config()))
        self.assertEqual(ref_dir, set(dir(revived)) - {"__annotations__"})

        serialized_json = to_json_with_tuples(saving.serialize_keras_object(instance))
        with saving.custom_object_scope(custom_objects):
            revived = saving.deserialize_keras_object(from_json_with_tuples(serialized_json))
        self.assertEqual(config_json, to_json_with_tuples(revived.get_config()))
        self.assertEqual(ref_dir, set(dir(revived)) - {"__annotations__"})
        return revived
