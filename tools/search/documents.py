"""Documents for the local corpus, and reading a user's folder of .txt / .md files into them."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
PASSAGE_CHARS = 1000


@dataclass(frozen=True)
class Document:
    """One indexable passage. `id` is unique in the corpus; `url` is set when one exists;
    `folder` is the document folder it was read from (empty for built-in corpora)."""

    id: str
    title: str
    text: str
    url: str = ""
    origin: str = "user"
    folder: str = ""


def split_passages(text: str, max_chars: int = PASSAGE_CHARS) -> list[str]:
    """Split text into passages of about `max_chars`, on paragraph (then sentence) breaks."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    pieces: list[str] = []
    for paragraph in filter(None, paragraphs):
        if len(paragraph) <= max_chars:
            pieces.append(paragraph)
            continue
        pieces.extend(re.split(r"(?<=[.!?])\s+", paragraph))
    passages: list[str] = []
    current = ""
    for piece in pieces:
        while len(piece) > max_chars:  # a single over-long sentence: hard cut
            if current:
                passages.append(current)
                current = ""
            passages.append(piece[:max_chars])
            piece = piece[max_chars:]
        if current and len(current) + 1 + len(piece) > max_chars:
            passages.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        passages.append(current)
    return passages


def _title(path: Path, text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            heading = line.strip().lstrip("#").strip()
            return heading[:120] if line.lstrip().startswith("#") else path.stem
    return path.stem


def read_text_file(path: Path) -> str | None:
    """The file's text, or None (with a warning naming it) when it is not UTF-8 text:
    a binary file named .txt would otherwise be indexed as passages of junk."""
    data = path.read_bytes()
    try:
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), len(data), "NUL byte")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        logger.warning("Skipped %s: not UTF-8 text (%s at byte %d)", path, error.reason,
                       error.start)
        return None


def read_documents(folder: str | Path, max_chars: int = PASSAGE_CHARS) -> Iterator[Document]:
    """Yield passages from every .txt/.md file under `folder`, with ids `<file path>#<n>`.

    Ids hold the file's absolute path, so two folders with a same-named file never collide
    and every fact drawn from a passage points at a file the user can open. Raises
    FileNotFoundError for a missing folder and ValueError when it holds no text.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"No such folder: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    found = False
    for file in files:
        text = read_text_file(file)
        if text is None:
            continue
        title = _title(file, text)
        for n, passage in enumerate(split_passages(text, max_chars)):
            found = True
            yield Document(
                id=f"{file.as_posix()}#{n}",
                title=title,
                text=passage,
                origin="user",
                folder=root.as_posix(),
            )
    if not found:
        raise ValueError(f"No .txt or .md documents with text found under {root}")
    logger.info("Read %d files from %s", len(files), root)
