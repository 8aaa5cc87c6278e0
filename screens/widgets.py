"""Widgets of the list screens that write to the terminal only what changed.

On a 9600-baud serial console a kilobyte takes a second: a cursor move should
send the rows whose highlight changed and the lines of the details pane whose
text changed, nothing else. Textual by itself sends more:

- ``Static.update`` repaints the whole widget (its border too), even with equal
  content, and by default asks for a layout of the whole screen, which makes
  the compositor repaint every scrollbar on it (the results table's horizontal
  one is 80 separately styled cells);
- a DataTable repaints the row under the (mouse) hover cursor on every key,
  even when no hover cursor is shown; the region of a row it repaints is as
  wide as the table, so the scrollbar cell beside it is repainted too; one
  changed cell repaints the whole table;
- an OptionList repaints every option when the highlight moves;
- every segment of a line is written with its own escape sequences (colours,
  attributes, a reset), the terminal's default colours too.

``DetailsPane``, ``RowTable`` and ``RowList`` avoid these, and hand the
compositor lines of fewer segments (``compact``); the screens look the same
(the snapshots, which take Textual's own segments, do not change).
``tests/test_wizard_traffic.py`` counts the bytes per cursor move in tmux.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from rich.cells import cell_len
from rich.color import ColorType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.reactive import reactive
from textual.visual import Visual
from textual.widgets import DataTable, OptionList, Static


class DetailsPane(Static):
    """A Static of a fixed size whose ``update`` repaints only the lines that
    changed, each up to its last changed cell, and nothing when nothing did.
    No layout on update: give it a fixed height (and width) in the stylesheet.
    Lines are compared as the ANSI theme writes them, so the terminal ends up
    with exactly the cells a full redraw would give it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._swallow_refresh = False

    def update(self, content="", *, layout: bool = False) -> None:
        if isinstance(content, (str, Text)) and self.is_mounted and self.content_size.width:
            from .wrap import wrap_labelled

            # wrapped here, each line continuing under its own text ("Found: ...", "- ...")
            text = Text(content) if isinstance(content, str) else content
            content = wrap_labelled(text, self.content_size.width)
        if layout or not self.is_mounted or not self.size:
            super().update(content, layout=layout)
            return
        before = self._lines()
        self._swallow_refresh = True  # Static.update repaints everything: paint the changes instead
        try:
            super().update(content, layout=False)
        finally:
            self._swallow_refresh = False
        after = self._lines()
        blank = Strip.blank(self.size.width)  # what a line without text shows
        before += [blank] * (len(after) - len(before))
        after += [blank] * (len(before) - len(after))
        changed = [Region(0, y, end, 1) for y, (old, new) in enumerate(zip(before, after))
                   if (end := _changed_end(old, new))]
        if changed:  # the widget's caches hold the old content: repaint only the changed lines
            self.refresh(*changed)
        else:  # looks the same: drop the cached visual, paint nothing
            self.refresh(repaint=False)

    def refresh(self, *regions, **kwargs):
        if self._swallow_refresh:
            return self
        return super().refresh(*regions, **kwargs)

    def render_lines(self, crop: Region) -> list[Strip]:
        # what the compositor paints (text selection reads render_line, with its offsets)
        strips = super().render_lines(crop)
        if self.app.is_headless:  # screenshots and snapshots: Textual's own segments
            return strips
        return [compact(strip.discard_meta()) for strip in strips]

    def _lines(self) -> list[Strip]:
        """The content lines as they are painted at the current size (what the screen shows)."""
        width, height = self.size
        return Visual.to_strips(self, self.visual, width, height, self.visual_style)


def _changed_end(old: Strip, new: Strip) -> int:
    """0 if the lines are written the same, else the cell after the last one that
    is not (the cells after it stay as they are on the screen)."""
    if old == new:
        return 0
    a, b = _cells(old), _cells(new)
    width = max(len(a), len(b))
    a += [_BLANK] * (width - len(a))
    b += [_BLANK] * (width - len(b))
    for x in range(width, 0, -1):
        if a[x - 1] != b[x - 1]:
            return x
    return 0


def _cells(strip: Strip) -> list[tuple]:
    """Each cell as it is written: its character and style (without the terminal's
    default colours and without mouse data, which are not written). A wide
    character takes two cells."""
    cells: list[tuple] = []
    for text, style, _ in strip:
        look = _look(None if style is None else _lean(style))
        for ch in text:
            cells.append((ch, look))
            if cell_len(ch) == 2:
                cells.append(("", look))
    return cells


class _Clipped:
    """Repaint requests kept to the visible content: a row's region is as wide as
    the whole list, and the compositor would repaint the scrollbar cells beside it."""

    def refresh(self, *regions: Region, **kwargs):
        view = Region(0, 0, *self.scrollable_content_region.size)
        if regions and view and not kwargs.get("layout") and not kwargs.get("recompose"):
            regions = tuple(clipped for region in regions if (clipped := region.intersection(view)))
            if not regions:
                return self
        return super().refresh(*regions, **kwargs)


class RowTable(_Clipped, DataTable):
    """A DataTable that does not repaint the hover row on every key (Textual does,
    to hide a hover cursor that is already hidden: a whole row per keypress), nor
    the scrollbar beside a row it repaints, nor the whole table for one changed
    cell, and whose lines have fewer segments."""

    _one_row = False

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        if update_width:  # the columns may change: all of it
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        self._one_row = True  # DataTable repaints the whole table: repaint the cell's row
        try:
            super().update_cell(row_key, column_key, value)
        finally:
            self._one_row = False
        self.refresh_row(self.get_row_index(row_key))

    def refresh(self, *regions: Region, **kwargs):
        if self._one_row and not regions:
            return self
        return super().refresh(*regions, **kwargs)

    def _set_hover_cursor(self, active: bool) -> None:
        if getattr(self, "_show_hover_cursor", None) is active:
            return
        super()._set_hover_cursor(active)

    def render_lines(self, crop: Region) -> list[Strip]:
        strips = super().render_lines(crop)
        if self.app.is_headless:  # screenshots and snapshots: Textual's own segments
            return strips
        same = _same_row if self.cursor_type == "row" else None
        return [compact(strip, same) for strip in strips]


class RowList(_Clipped, OptionList):
    """An OptionList that repaints only the two options whose highlight changed
    (Textual repaints the whole list on every move), in lines of fewer segments."""

    highlighted: reactive[int | None] = reactive(None, repaint=False)

    def watch_highlighted(self, old: int | None, new: int | None) -> None:
        super().watch_highlighted(new)
        for index in (old, new):
            if index is None or not 0 <= index < self.option_count:
                continue
            try:
                self.refresh_lines(self._index_to_line[index], self._heights[index])
            except (KeyError, AttributeError):  # not laid out yet (or another Textual): all of it
                self.refresh()
                return

    def render_lines(self, crop: Region) -> list[Strip]:
        strips = super().render_lines(crop)
        if self.app.is_headless:
            return strips
        return [compact(strip) for strip in strips]


def _same_row(a: Style | None, b: Style | None) -> bool:
    """Cells of one body row: with a row cursor a click or hover on any of them
    means that row (a joined segment keeps its first cell's column)."""
    ma, mb = _meta(a), _meta(b)
    if ma == mb:
        return True
    row = ma.get("row")
    return (isinstance(row, int) and row >= 0 and mb.get("row") == row
            and {k: v for k, v in ma.items() if k != "column"} == {k: v for k, v in mb.items() if k != "column"})


def compact(strip: Strip, same_data: Callable[[Style | None, Style | None], bool] | None = None) -> Strip:
    """The same line in fewer bytes. Each segment is written as its own escape
    sequence, the text and a reset; so the terminal's default colours (ANSI theme)
    are not named (every segment starts after a reset, in those colours already,
    and is then bare text), neighbours that look the same are joined, and a run
    of blanks with a style of its own takes the style of the segment beside it
    when that looks the same (same background, no underline, strike or reverse;
    truecolour themes). Segments are joined only when ``same_data`` holds for
    their styles (by default: the same mouse data, which clicks and hovers read)."""
    same_data = same_data or _same_meta
    out: list[Segment] = []
    changed = False
    for segment in strip:
        text, style, control = segment
        if style is not None and not control:
            lean = _lean(style)
            if lean is not style:
                style, changed = lean, True
        if out and not control and not out[-1].control:
            prev_text, prev_style, _ = out[-1]
            if same_data(prev_style, style):
                if _look(prev_style) == _look(style):
                    out[-1] = Segment(prev_text + text, prev_style)
                    continue
                # blanks written in a style of their own take the neighbour's (without
                # one they cost nothing, and keep their own attributes, as a full redraw does)
                if _blank_alike(prev_style, style):
                    if not text.strip(" ") and not _plain(style):
                        out[-1] = Segment(prev_text + text, prev_style)
                        continue
                    if not prev_text.strip(" ") and not _plain(prev_style):
                        out[-1] = Segment(prev_text + text, style)
                        continue
        out.append(Segment(text, style, control))
    if not changed and len(out) == len(strip._segments):
        return strip
    return Strip(out, strip.cell_length)


@lru_cache(maxsize=1024)
def _lean(style: Style) -> Style:
    """The style without the terminal's default colours (SGR 39/49): the same look."""
    color, bgcolor = style.color, style.bgcolor
    fg_default = color is not None and color.type == ColorType.DEFAULT
    bg_default = bgcolor is not None and bgcolor.type == ColorType.DEFAULT
    if not (fg_default or bg_default):
        return style
    lean = style.without_color + Style(color=None if fg_default else color, bgcolor=None if bg_default else bgcolor)
    if style._meta:
        lean += Style.from_meta(style.meta)
    return lean


def _blank_alike(a: Style | None, b: Style | None) -> bool:
    """Do blanks look the same in styles a and b?"""
    a, b = a or _NULL, b or _NULL
    return (a.bgcolor == b.bgcolor and a.link == b.link
            and not any(s.reverse or s.underline or s.underline2 or s.strike or s.overline or s.conceal
                        for s in (a, b)))


@lru_cache(maxsize=1024)
def _look(style: Style | None) -> tuple:
    """What a style draws: all but its mouse data."""
    style = style or _NULL
    return style.clear_meta_and_links(), style.link


@lru_cache(maxsize=1024)
def _meta(style: Style | None) -> dict:
    return style.meta if style is not None and style._meta else {}


@lru_cache(maxsize=1024)
def _plain(style: Style | None) -> bool:
    """Is a segment of this style written as bare text (no escape sequence)?"""
    return style is None or str(style) == "none"


def _same_meta(a: Style | None, b: Style | None) -> bool:
    return _meta(a) == _meta(b)


_NULL = Style()
_BLANK = (" ", _look(None))
