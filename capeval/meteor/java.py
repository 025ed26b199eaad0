"""Locating Java, ``javac`` and meteor-1.5.jar; compiling capeval's front end (``capeval/java/``) once
into the cache; the environment and command-line pieces every JVM gets."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from .._io import ENV_CACHE, cache_root, file_sha256  # noqa: F401  (ENV_CACHE: re-exported)
from ..errors import MeteorUnavailableError
from .logs import log

JAR_NAME = "meteor-1.5.jar"
PARAPHRASE = Path("data") / "paraphrase-en.gz"
ENV_JAR = "CAPEVAL_METEOR_JAR"
# pycocoevalcap's arguments after the jar: read stdin, answer on stdout, English, normalized
METEOR_ARGS = ("-", "-", "-stdio", "-l", "en", "-norm")
# Numbers are printed by Java's Double.toString (locale-free) but *parsed* back by java.util.Scanner,
# which follows the default locale: under de_DE "0.5" fails and the JVM exits. String.toLowerCase in
# -norm follows it too (Turkish dotless i). So the locale is pinned on the command line.
LOCALE_ARGS = ("-Duser.language=en", "-Duser.country=US")
# capeval's multi-threaded front end (our source, compiled once against the jar, see compile_server)
SERVER_SOURCE = Path(__file__).resolve().parent.parent / "java" / "CapevalMeteor.java"
SERVER_CLASS = "CapevalMeteor"
# Options the JVM reads from the environment; _JAVA_OPTIONS even overrides the command line.
JAVA_ENV_OPTIONS = ("_JAVA_OPTIONS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS")
INSTALL_JAR = (
    "pip install pycocoevalcap (it ships meteor-1.5.jar and data/paraphrase-en.gz), or point "
    f"{ENV_JAR} (or jar=...) at a meteor-1.5.jar that has data/paraphrase-en.gz beside it"
)
INSTALL_JAVA = (
    "install a Java runtime (8 or newer; e.g. apt-get install default-jre-headless, "
    "conda install -c conda-forge openjdk, brew install openjdk), or set JAVA_HOME, or pass java=..."
)


def _jar_in(path: Path) -> Path:
    return path / JAR_NAME if path.is_dir() else path


def find_meteor_jar(path=None) -> Path:
    """``meteor-1.5.jar``: ``path`` (the jar or its directory), else ``$CAPEVAL_METEOR_JAR``, else the one
    in an installed pycocoevalcap. Its ``data/paraphrase-en.gz`` must be beside it (Meteor looks there).
    Raises :class:`MeteorUnavailableError` saying what is missing and how to get it."""
    if path is not None:
        candidates = [("jar=", Path(path))]
    elif os.environ.get(ENV_JAR):
        candidates = [(f"${ENV_JAR}", Path(os.environ[ENV_JAR]))]
    else:
        try:
            spec = importlib.util.find_spec("pycocoevalcap")
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise MeteorUnavailableError(
                f"the Meteor 1.5 jar was not found: pycocoevalcap is not installed; {INSTALL_JAR}"
            )
        candidates = [("pycocoevalcap", Path(p) / "meteor") for p in spec.submodule_search_locations]
    problems = []
    for origin, cand in candidates:
        jar = _jar_in(cand.expanduser())
        if not jar.is_file():
            problems.append(f"{jar} does not exist (from {origin})")
            continue
        if not zipfile.is_zipfile(jar):
            problems.append(f"{jar} is not a jar (a truncated download or a git-lfs pointer?)")
            continue
        para = jar.parent / PARAPHRASE
        if not para.is_file() or para.stat().st_size < 1_000_000:
            problems.append(f"{para} is missing or incomplete (Meteor needs it beside the jar)")
            continue
        return jar.resolve()
    raise MeteorUnavailableError(f"the Meteor 1.5 jar is unusable: {'; '.join(problems)}; {INSTALL_JAR}")


def find_java(java=None) -> str:
    """The ``java`` executable: ``java`` (a path or a command name), else ``$JAVA_HOME/bin/java``, else
    ``java`` on PATH. Raises :class:`MeteorUnavailableError` if none is there."""
    exe = "java.exe" if os.name == "nt" else "java"
    if java is not None:
        java = os.fspath(java)
        if os.path.isdir(java):
            java = (
                os.path.join(java, "bin", exe)
                if os.path.isdir(os.path.join(java, "bin"))
                else os.path.join(java, exe)
            )
        found = shutil.which(java)
        if found:
            return found
        raise MeteorUnavailableError(
            f"Java runtime not found: {java!r} (from java=) is not an executable; {INSTALL_JAVA}"
        )
    home = os.environ.get("JAVA_HOME")
    if home:
        cand = os.path.join(home, "bin", exe)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
        log.warning("JAVA_HOME=%s has no bin/%s; looking for java on PATH", home, exe)
    found = shutil.which("java")
    if found:
        return found
    where = f"JAVA_HOME={home!r} has no bin/{exe} and " if home else ""
    raise MeteorUnavailableError(f"Java runtime not found: {where}no java on PATH; {INSTALL_JAVA}")


def jar_unavailable_reason(jar=None, java=None) -> str | None:
    """Why the jar cannot run here (no Java, no jar), or ``None`` if it can (nothing is started)."""
    try:
        find_java(java)
        find_meteor_jar(jar)
    except MeteorUnavailableError as exc:
        return str(exc)
    return None


def jar_version(jar: Path) -> str:
    """Meteor's version from the jar's file name (``meteor-1.5.jar`` -> ``1.5``)."""
    m = re.search(r"meteor-(\d+(?:\.\d+)*)", Path(jar).name)
    return m.group(1) if m else "unknown"


_JAR_TAGS: dict[tuple[str, int, int], str] = {}


def jar_tag(jar) -> str:
    """``meteor-1.5.jar@<12 hex digits of its SHA-256>``: names the exact jar in a signature. Read once
    per (path, size, mtime), in blocks, the file closed; ``@missing`` when the file is not there."""
    path = os.fspath(jar)
    try:
        st = os.stat(path)
    except OSError:
        return f"{os.path.basename(path)}@missing"
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _JAR_TAGS:
        _JAR_TAGS[key] = f"{os.path.basename(path)}@{file_sha256(path)[:12]}"
    return _JAR_TAGS[key]


def sanitized_env() -> dict:
    """The environment for Java: no option variables (``_JAVA_OPTIONS`` overrides the command line),
    C numeric conventions, UTF-8 (so a jar path with non-ASCII characters still opens)."""
    env = {k: v for k, v in os.environ.items() if k not in JAVA_ENV_OPTIONS}
    if os.name != "nt":
        env["LC_ALL"] = "C.UTF-8"
        env["LANG"] = "C.UTF-8"
    return env


def compile_server(java: str, jar: Path) -> Path:
    """The directory holding ``CapevalMeteor.class``, capeval's front end to the jar, compiled once with
    the ``javac`` beside ``java`` and cached in ``$CAPEVAL_CACHE`` (default ``~/.cache/capeval``).

    The front end (``capeval/java/CapevalMeteor.java``) answers the jar's stdio protocol with the jar's
    own configuration and scorer classes, but loads Meteor's tables once and scores with several threads
    (Meteor's ``MeteorScorer(MeteorScorer)`` shares the tables and gives each its own stemmer), instead
    of one JVM per worker each loading them. Raises :class:`MeteorUnavailableError` when there is no
    ``javac`` (a JRE without the JDK) or it cannot compile; ``jvm_mode="processes"`` needs neither."""
    javac = Path(java).resolve().parent / ("javac.exe" if os.name == "nt" else "javac")
    if not javac.is_file():
        raise MeteorUnavailableError(
            f"no javac beside {java} (a JRE, not a JDK) to compile capeval's front end"
        )
    key = hashlib.sha256(SERVER_SOURCE.read_bytes())
    for part in (javac, jar):
        st = part.stat()
        key.update(f"|{part}|{st.st_size}|{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    target = cache_root() / f"meteor-server-{key.hexdigest()[:16]}"
    if (target / f"{SERVER_CLASS}.class").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    except OSError as exc:
        raise MeteorUnavailableError(
            f"cannot write the compiled front end under {target.parent}: {exc}"
        ) from exc
    try:
        cmd = [
            str(javac),
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-cp",
            str(jar),
            "-d",
            str(build),
            str(SERVER_SOURCE),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, env=sanitized_env(), timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MeteorUnavailableError(f"javac failed: {exc}") from exc
        if done.returncode != 0 or not (build / f"{SERVER_CLASS}.class").is_file():
            tail = done.stderr.decode("utf-8", "replace").strip()[-800:]
            raise MeteorUnavailableError(f"javac could not compile capeval's front end against {jar}: {tail}")
        try:
            os.replace(build, target)  # atomic: a concurrent compile leaves one complete directory
        except OSError:
            if not (target / f"{SERVER_CLASS}.class").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target
