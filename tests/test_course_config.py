"""The nbgrader configuration loads (nbgrader ignores a broken config file with only a log line)."""
from traitlets.config.loader import PyFileConfigLoader

from autograde.release import TagExpectedErrors
from notebook_tools import COURSE


def test_nbgrader_config_loads_and_sets_the_course_layout():
    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    assert config.CourseDirectory.root == str(COURSE)
    assert config.CourseDirectory.source_directory == "../solutions"
    assert config.CourseDirectory.release_directory == "../notebooks"
    assert config.CourseDirectory.db_url.endswith("autograde/gradebook.db")
    assert config.Execute.timeout > 0
    assert TagExpectedErrors in config.GenerateAssignment.preprocessors
    assert config.IgnorePattern.pattern
