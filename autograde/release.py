"""nbgrader preprocessor used by `make release` to prepare the student notebooks."""
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution


class TagExpectedErrors(NbGraderPreprocessor):
    """Tag every autograded test cell `raises-exception` in the student version.

    An untouched student notebook raises NotImplementedError in its test cells; the tag tells
    nbval (and readers) that this is expected, so the rest of the notebook is still checked.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
        return cell, resources
