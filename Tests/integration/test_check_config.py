"""`pantau check-config FILE`: every mistake in fixtures/broken/*.yaml is reported as `file:line:column: message`.

Each broken file states what it expects in comment lines, so adding a case is adding a file:

    # expect: LINE:COL word|other word

LINE and COL are 1-based and point at the offending YAML node (libyaml's start mark of the key, value or mapping;
for a syntax error, libyaml's problem mark). The message must contain one of the `|`-separated words
(case-insensitive). Every expectation of a file must be reported by one run: the checker does not stop at the first.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
from dataclasses import dataclass

import pytest

from pantau_harness.gateway import EX_CONFIG, check_config
from pantau_harness.procs import harness_root

FIXTURES = os.path.join(harness_root(), "fixtures")
BROKEN = sorted(glob.glob(os.path.join(FIXTURES, "broken", "*.yaml")))
EXPECT = re.compile(r"^#\s*expect:\s*(\d+):(\d+)\s+(.+?)\s*$")
DIAGNOSTIC = re.compile(r"^(?P<file>\S[^:]*):(?P<line>\d+):(?P<col>\d+):\s*(?P<message>.*)$")


@dataclass(frozen=True)
class Expectation:
    line: int
    column: int
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.line}:{self.column} ~ {'|'.join(self.words)}"


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    message: str


def expectations(path: str) -> list[Expectation]:
    found = []
    with open(path, encoding="utf-8") as f:
        for text in f:
            m = EXPECT.match(text.strip())
            if m:
                words = tuple(w.strip().lower() for w in m.group(3).split("|") if w.strip())
                found.append(Expectation(int(m.group(1)), int(m.group(2)), words))
    return found


def diagnostics(output: str) -> list[Diagnostic]:
    found = []
    for text in output.splitlines():
        m = DIAGNOSTIC.match(text.strip())
        if m:
            found.append(Diagnostic(m["file"], int(m["line"]), int(m["col"]), m["message"]))
    return found


def run_in_fixture_dir(path: str):
    """Runs from the file's folder with the bare file name, so `profiles: [../profiles]` resolves the same way
    whether the gateway takes it relative to the working directory or to the config file."""
    return check_config(os.path.basename(path), cwd=os.path.dirname(path))


@pytest.mark.parametrize("path", BROKEN, ids=[os.path.basename(p) for p in BROKEN])
def test_broken_file_expectations_point_into_the_file(path):
    """Harness check (no binary needed): every `# expect:` names a real, non-blank position of its file."""
    expected = expectations(path)
    assert expected, f"{path} has no '# expect: LINE:COL words' line"
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for e in expected:
        assert 1 <= e.line <= len(lines), f"{path}: {e} is past the end"
        text = lines[e.line - 1]
        assert not text.lstrip().startswith("#"), f"{path}: {e} points into a comment"
        assert 1 <= e.column <= len(text) and not text[e.column - 1].isspace(), f"{path}: {e} points at a blank"


@pytest.mark.gateway
@pytest.mark.parametrize("path", BROKEN, ids=[os.path.basename(p) for p in BROKEN])
def test_check_config_reports_every_mistake_at_its_place(pantau_bin, path):
    result = run_in_fixture_dir(path)
    output = result.stdout + result.stderr
    assert result.returncode == EX_CONFIG, f"exit {result.returncode}, expected {EX_CONFIG} (EX_CONFIG):\n{output}"
    found = [d for d in diagnostics(output) if os.path.basename(d.file) == os.path.basename(path)]
    assert found, f"no 'file:line:column: message' line naming {os.path.basename(path)}:\n{output}"
    missing = []
    for e in expectations(path):
        at_place = [d for d in found if (d.line, d.column) == (e.line, e.column)]
        if not any(any(w in d.message.lower() for w in e.words) for d in at_place):
            missing.append(f"  {e}  (at that place: {[d.message for d in at_place] or 'nothing'})")
    assert not missing, f"{os.path.basename(path)}: expected diagnostics not reported:\n" + "\n".join(missing) + (
        f"\n--- output ---\n{output}"
    )


@pytest.mark.gateway
def test_check_config_accepts_the_valid_file(pantau_bin):
    path = os.path.join(FIXTURES, "configs", "valid.yaml")
    result = run_in_fixture_dir(path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not [d for d in diagnostics(output) if "error" in d.message.lower()], output


# --- Hostile bytes (issue 11): files that are not clean UTF-8 text, or are built to exhaust the parser. ---------------
# They are written at test time (the expectations above are read as UTF-8 text, which these are not).

VALID = os.path.join(FIXTURES, "configs", "valid.yaml")


def _hostile(tmp_path, name: str, data: bytes) -> str:
    """Writes `data` as a config beside a copy of the test profile folder, so `profiles: [../profiles]` resolves."""
    conf = tmp_path / "configs"
    conf.mkdir(exist_ok=True)
    profiles = tmp_path / "profiles"
    if not profiles.exists():
        profiles.mkdir()
        for p in glob.glob(os.path.join(FIXTURES, "profiles", "*.yaml")):
            (profiles / os.path.basename(p)).write_bytes(open(p, "rb").read())
    path = conf / name
    path.write_bytes(data)
    return str(path)


def _valid_padded_to(line: int) -> list[bytes]:
    """valid.yaml with comment lines in front, so its last line `status: ...` is line `line`."""
    lines = open(VALID, "rb").read().rstrip(b"\n").split(b"\n")
    return [b"# padding"] * (line - len(lines)) + lines


HOSTILE_BYTES = {
    # name: (bytes, expected line, expected column, words)
    "control-byte-line-49": (
        b"\n".join(_valid_padded_to(49)[:-1] + [b"status: {socket: /tmp/x\x01.sock}"]) + b"\n", 49, 24, ("control",)),
    "nul-byte": (b"\n".join(_valid_padded_to(49)[:-1] + [b"status: {socket: /tmp/\x00.sock}"]) + b"\n", 49, 23, ("control",)),
    "utf16-bom": (open(VALID, "rb").read().decode("utf-8").encode("utf-16"), 1, 1, ("utf-16",)),
    "invalid-utf8": (b"\n".join(_valid_padded_to(49)[:-1] + [b"status: {socket: /tmp/caf\xe9.sock}"]) + b"\n", 49, 26,
                     ("invalid utf-8",)),
    "alias-bomb": (
        (b"gateway: {site: s, id: g}\nlol:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
         + b"".join(b"  a%d: &a%d [" % (i, i) + b", ".join([b"*a%d" % (i - 1)] * 10) + b"]\n" for i in range(1, 10))),
        7, 47, ("100000 nodes",)),
    "deep-nesting": (b"gateway: " + b"[" * 40000 + b"]" * 40000 + b"\n", 1, 73, ("deeper than 64",)),
    "oversized": (open(VALID, "rb").read() + b"#" + b"x" * (1 << 20) + b"\n", 1, 1, ("larger than 1 mib",)),
}


@pytest.mark.gateway
@pytest.mark.parametrize("name", sorted(HOSTILE_BYTES))
def test_hostile_bytes_are_refused_at_their_place(pantau_bin, tmp_path, name):
    data, line, column, words = HOSTILE_BYTES[name]
    path = _hostile(tmp_path, f"{name}.yaml", data)
    result = check_config(os.path.basename(path), cwd=os.path.dirname(path), timeout=20)
    output = result.stdout + result.stderr
    assert result.returncode == EX_CONFIG, f"exit {result.returncode}:\n{output[-3000:]}"
    found = [d for d in diagnostics(output) if (d.line, d.column) == (line, column)]
    assert any(any(w in d.message.lower() for w in words) for d in found), output[-3000:]


# --- Password file permissions (issue 11): readable by everyone is refused by check-config and by run. ---------------


def _config_with_password_file(tmp_path, mode: int) -> str:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, mode)
    text = open(VALID, encoding="utf-8").read().replace(
        "  client_id: pantau-test\n", f"  client_id: pantau-test\n  username: gw\n  password_file: {secret}\n")
    text = text.replace("profiles: [../profiles]", f"profiles: [{os.path.join(FIXTURES, 'profiles')}]")
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.gateway
def test_a_password_file_readable_by_everyone_is_refused_by_check_config_and_run(pantau_bin, tmp_path):
    path = _config_with_password_file(tmp_path, 0o644)
    result = check_config(path)
    output = result.stdout + result.stderr
    assert result.returncode == EX_CONFIG, output
    found = [d for d in diagnostics(output) if "readable by everyone" in d.message]
    assert found and "mode 644" in found[0].message and "mqtt-password" in found[0].message, output
    run = subprocess.run([pantau_bin, "run", "--config", path], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == EX_CONFIG, run.stdout + run.stderr
    assert "readable by everyone" in run.stdout + run.stderr


@pytest.mark.gateway
@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_a_password_file_private_or_group_readable_is_accepted(pantau_bin, tmp_path, mode):
    result = check_config(_config_with_password_file(tmp_path, mode))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Profiles (issue 11): `profiles validate` applies the same checks as loading. --------------------------------------


@pytest.mark.gateway
def test_profiles_validate_refuses_an_id_that_is_not_the_file_name_and_a_bomb(pantau_bin, tmp_path):
    source = open(os.path.join(FIXTURES, "profiles", "test-mixed-types.yaml"), encoding="utf-8").read()
    (tmp_path / "renamed-copy.yaml").write_text(source)
    (tmp_path / "bomb.yaml").write_bytes(HOSTILE_BYTES["alias-bomb"][0])
    (tmp_path / "test-mixed-types.yaml").write_text(source)
    result = subprocess.run([pantau_bin, "profiles", "validate", str(tmp_path)], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == EX_CONFIG, output
    found = {os.path.basename(d.file): d for d in diagnostics(output)}
    assert "does not match its file name 'renamed-copy.yaml'" in found["renamed-copy.yaml"].message, output
    assert "100000 nodes" in found["bomb.yaml"].message, output
    assert "test-mixed-types.yaml: OK" in output
    assert "2 of 3 profiles invalid" in output


# --- Help texts (issue 11 papercut): no paragraph is broken in the middle of a sentence. ------------------------------

SUBCOMMANDS = [
    [], ["run"], ["check-config"], ["demo"], ["simulate"], ["status"], ["journal"], ["journal", "stats"],
    ["journal", "peek"], ["journal", "export"], ["mqtt-test"], ["scan"], ["read"], ["raw"], ["raw", "read"],
    ["raw", "write"], ["profiles"], ["profiles", "list"], ["profiles", "show"], ["profiles", "validate"],
    ["profiles", "test"], ["profiles", "plan"],
]


@pytest.mark.gateway
@pytest.mark.parametrize("command", SUBCOMMANDS, ids=[" ".join(c) or "pantau" for c in SUBCOMMANDS])
def test_help_text_paragraphs_are_not_broken_mid_sentence(pantau_bin, command):
    """ArgumentParser wraps at the terminal width itself; a hard line break inside a sentence of the source shows as a
    short line followed by the sentence's continuation. Indented lines (examples) are meant to stand alone."""
    result = subprocess.run([pantau_bin, *command, "--help"], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    prose = result.stdout.split("USAGE:")[0].splitlines()
    broken = [
        (a, b) for a, b in zip(prose, prose[1:])
        if a.strip() and b.strip() and not b.startswith(" ") and not a.startswith(" ")
        and len(a) < 50 and not a.rstrip().endswith((".", ":", "!", "?", ")"))
    ]
    assert not broken, f"`pantau {' '.join(command)} --help` breaks a sentence: {broken}"


# --- Where shipped profiles are found (issue 11 papercut): next to the executable, without $PANTAU_PROFILES. ----------


def _env_without_profiles() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PANTAU_PROFILES"}


@pytest.mark.gateway
def test_a_binary_outside_the_source_tree_finds_profiles_next_to_it(pantau_bin, tmp_path):
    prefix = tmp_path / "opt" / "pantau"
    (prefix / "bin").mkdir(parents=True)
    shipped = prefix / "share" / "pantau" / "firmware-profiles"
    shipped.mkdir(parents=True)
    (shipped / "test-mixed-types.yaml").write_bytes(
        open(os.path.join(FIXTURES, "profiles", "test-mixed-types.yaml"), "rb").read())
    binary = prefix / "bin" / "pantau"
    binary.write_bytes(open(pantau_bin, "rb").read())
    binary.chmod(0o755)
    result = subprocess.run([str(binary), "profiles", "list"], capture_output=True, text=True, timeout=30,
                            env=_env_without_profiles(), cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "test-mixed-types" in result.stdout, result.stdout + result.stderr


@pytest.mark.gateway
def test_no_profile_folder_found_says_which_folders_were_searched(pantau_bin, tmp_path):
    if os.path.isdir("/usr/share/pantau/firmware-profiles"):
        pytest.skip("this machine has installed profiles in /usr/share/pantau")
    binary = tmp_path / "lonely" / "pantau"
    binary.parent.mkdir()
    binary.write_bytes(open(pantau_bin, "rb").read())
    binary.chmod(0o755)
    text = open(VALID, encoding="utf-8").read().replace("profiles: [../profiles]\n", "")
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    result = subprocess.run([str(binary), "check-config", str(config)], capture_output=True, text=True, timeout=30,
                            env=_env_without_profiles(), cwd=tmp_path, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == EX_CONFIG, output
    assert "searched \n" not in output and not output.rstrip().endswith("searched"), output
    messages = [d.message for d in diagnostics(output) if "unknown profile" in d.message]
    assert messages and "no profile folder was found" in messages[0], output
    assert "/usr/share/pantau/firmware-profiles" in messages[0], output
    assert f"{tmp_path}/share/pantau/firmware-profiles" in messages[0], output


@pytest.mark.gateway
def test_profiles_validate_with_no_profile_folder_says_where_it_looked(pantau_bin, tmp_path):
    if os.path.isdir("/usr/share/pantau/firmware-profiles"):
        pytest.skip("this machine has installed profiles in /usr/share/pantau")
    binary = tmp_path / "lonely" / "pantau"
    binary.parent.mkdir()
    binary.write_bytes(open(pantau_bin, "rb").read())
    binary.chmod(0o755)
    result = subprocess.run([str(binary), "profiles", "validate"], capture_output=True, text=True, timeout=30,
                            env=_env_without_profiles(), cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == EX_CONFIG, result.stdout + result.stderr
    assert "no profile folder was found" in result.stderr and "/usr/share/pantau/firmware-profiles" in result.stderr
