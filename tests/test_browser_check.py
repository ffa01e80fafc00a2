"""``scripts/browser.sh``, the check ``make test`` and ``.ci/run`` run before the suite: it must
answer within seconds where the browser is missing and cannot be installed, install it where
apt-get is usable, and make CI fail rather than skip.

The script runs with a ``PATH`` of one temporary folder, so whatever this machine has installed
(Chromium, apt-get, sudo) is out of sight; fake ``apt-get``/``sudo`` stand in where needed.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_browser import BROWSERS, DRIVERS, _missing

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "browser.sh"
BASH = "/bin/bash"


def _run(path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environ = {"PATH": str(path), "HOME": str(path), **env}  # no CI, no JAXSIM_* from outside
    start = time.monotonic()
    done = subprocess.run([BASH, str(SCRIPT), *args], env=environ, cwd=path, capture_output=True,
                          text=True, timeout=60)
    return done, time.monotonic() - start


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def test_missing_browser_is_reported_within_seconds_and_the_check_passes(tmp_path):
    done, seconds = _run(tmp_path)
    assert seconds < 10, seconds
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "chromium and chromedriver missing" in line and "SKIPPED" in line, line
    assert "no apt-get" in line  # says why it did not install


def test_require_mode_fails_fast_without_a_browser(tmp_path):
    for args, env in (((("--require",)), {}), ((), {"CI": "true"}), ((), {"JAXSIM_REQUIRE_BROWSER": "1"})):
        done, seconds = _run(tmp_path, *args, **env)
        assert seconds < 10 and done.returncode == 1, (args, env, done)
        assert "FAILED" in done.stderr and "must run" in done.stderr


def test_found_mode_is_silent_and_tells_make_whether_to_skip(tmp_path):
    done, _ = _run(tmp_path, "--found")
    assert done.returncode == 1 and done.stdout == done.stderr == ""
    for name in ("chromium", "chromedriver"):
        _executable(tmp_path / name, "#!/bin/sh\n")
    done, _ = _run(tmp_path, "--found")
    assert done.returncode == 0 and done.stdout == ""
    done, _ = _run(tmp_path)
    assert done.returncode == 0 and "the browser tests will run" in done.stdout


def test_missing_browser_is_installed_with_apt_get_when_usable(tmp_path):
    """A fake apt-get (behind a fake passwordless sudo when not root) 'installs' both binaries."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    (bin_dir / "env").symlink_to("/usr/bin/env")
    (bin_dir / "true").symlink_to("/bin/true")  # for `sudo -n true` when not root
    _executable(bin_dir / "sudo", '#!/bin/bash\n[ "$1" = -n ] && shift\nexec "$@"\n')
    _executable(bin_dir / "apt-get", f"""#!/bin/bash
echo "$DEBIAN_FRONTEND $*" >> {log}
if [ "$1" = install ]; then
    for name in chromium chromedriver; do printf '#!/bin/sh\\n' > {bin_dir}/$name; done
    /bin/chmod +x {bin_dir}/chromium {bin_dir}/chromedriver
fi
""")
    done, _ = _run(bin_dir)
    assert done.returncode == 0, done
    assert "installing Debian's chromium and chromium-driver" in done.stdout
    assert f"installed {bin_dir}/chromium and {bin_dir}/chromedriver" in done.stdout
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls[0] == "noninteractive update -q"
    assert calls[1].startswith("noninteractive install") and calls[1].endswith("chromium chromium-driver")

    for name in ("chromium", "chromedriver"):
        (bin_dir / name).unlink()
    done, _ = _run(bin_dir, JAXSIM_BROWSER_INSTALL="0")  # the opt-out: report, never install
    assert "SKIPPED" in done.stdout and len(log.read_text(encoding="utf-8").splitlines()) == 2


def test_script_looks_for_the_binaries_the_browser_test_uses():
    text = SCRIPT.read_text(encoding="utf-8")
    for name in (*BROWSERS, *DRIVERS, "JAXSIM_CHROMIUM", "JAXSIM_CHROMEDRIVER"):
        assert name in text, name


@pytest.mark.parametrize("env, outcome", [
    ({"JAXSIM_ALLOW_NO_BROWSER": "1"}, pytest.skip.Exception),
    ({}, pytest.fail.Exception),
    ({"JAXSIM_ALLOW_NO_BROWSER": "1", "CI": "true"}, pytest.fail.Exception),
    ({"JAXSIM_ALLOW_NO_BROWSER": "1", "JAXSIM_REQUIRE_BROWSER": "1"}, pytest.fail.Exception),
])
def test_browser_tests_skip_only_when_allowed_and_never_in_ci(monkeypatch, env, outcome):
    for name in ("JAXSIM_ALLOW_NO_BROWSER", "JAXSIM_REQUIRE_BROWSER", "CI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(outcome, match="no headless browser"):
        _missing("no headless browser")


def test_make_test_checks_the_browser_before_installing_anything(tmp_path):
    if not os.path.exists("/usr/bin/make"):
        pytest.skip("no make")
    plan = subprocess.run(["make", "-n", "test", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
    first_pip = next(i for i, line in enumerate(plan) if "pip install" in line)
    assert plan.index("bash scripts/browser.sh") < first_pip
    skip = next(line for line in plan if "else" not in line and "JAXSIM_ALLOW_NO_BROWSER=1" in line)
    assert "pytest" in skip  # without a browser the suite still runs, with the browser tests skipped
