"""The model and training items are graded by what they compute (issue 28), and stay so.

Each model item's hidden tests compare the student's model with a reference on the same weights
(``assert_same_model``: outputs and gradients, train and eval mode); each training item's hidden tests replay the
student's own batches and compare the parameters step for step (``assert_same_trajectory``, naming a mistake only
when the trajectory follows it); prediction is checked for side effects. The mutation suite
(``tests/mutants/aN.py``) holds the mistakes these checks alone catch; this test keeps the checks from being
dropped by an edit of a master, and checks that none of them reaches the release.
"""

from __future__ import annotations

import nbformat
import pytest

from dlcourse.core.notebook import nbgrader_meta
from helpers import RELEASE, SOURCE

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"

#: (master, test cell) -> what its hidden part must call
GRADED_BY_COMPUTATION = {
    ("a3_layers/a3_layers.ipynb", "test_fcnet_do"): "assert_same_model(",
    ("a3_layers/a3_mnist.ipynb", "test_mlp"): "assert_same_model(",
    ("a3_layers/a3_mnist.ipynb", "test_train_one_epoch"): "assert_same_trajectory(",
    ("a4_convnets/a4_vgg_cifar.ipynb", "test_VGG16"): "assert_same_model(",
    ("a4_convnets/a4_vgg_cifar.ipynb", "test_train_one_epoch"): "assert_same_trajectory(",
    ("a4_convnets/a4_vgg_cifar.ipynb", "test_predict"): "SIDE_EFFECTS",
    ("a6_autoencoders/a6_autoencoders.ipynb", "test_Encoder"): "assert_same_model(",
    ("a6_autoencoders/a6_autoencoders.ipynb", "test_Decoder"): "assert_same_model(",
    ("a6_autoencoders/a6_autoencoders.ipynb", "test_Autoencoder"): "assert_same_model(",
    ("a6_autoencoders/a6_autoencoders.ipynb", "test_train_autoencoder"): "assert_same_trajectory(",
}


def _cell(path, grade_id: str) -> str:
    for cell in nbformat.read(str(path), as_version=4).cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return cell.source
    raise AssertionError(f"{path} has no cell {grade_id}")


@pytest.mark.parametrize(("master", "grade_id"), GRADED_BY_COMPUTATION, ids=lambda v: str(v).split("/")[-1])
def test_the_hidden_tests_of_a_model_or_training_item_compare_with_a_reference(master, grade_id):
    source = _cell(SOURCE / master, grade_id)
    hidden = source[source.index(HIDDEN_BEGIN):source.index(HIDDEN_END)]
    assert GRADED_BY_COMPUTATION[master, grade_id] in hidden


@pytest.mark.parametrize(("master", "grade_id"), GRADED_BY_COMPUTATION, ids=lambda v: str(v).split("/")[-1])
def test_the_released_cell_holds_none_of_these_checks(master, grade_id):
    released = _cell(RELEASE / master, grade_id)
    for marker in ("assert_same_model(", "assert_same_trajectory(", "STEP_RECORDER", "SIDE_EFFECTS", "Reference", "reference_vgg16"):
        assert marker not in released
