//! A text field for gpui, which has none of its own.
//!
//! [`EditBuffer`] is the editing logic (text, selection, cursor motion), free of gpui and
//! unit-tested on its own. [`TextInput`] is the gpui view around it: it takes typing through
//! the platform input handler (so IMEs work), draws the text line by line, and turns the
//! [`bind_keys`] key bindings, the mouse and the clipboard into edits.

use std::borrow::Cow;
use std::ops::Range;

use gpui::{
    App, Bounds, ClipboardItem, ContentMask, Context, CursorStyle, DispatchPhase, Element,
    ElementId, ElementInputHandler, Entity, EntityInputHandler, EventEmitter, FocusHandle,
    Focusable, GlobalElementId, InspectorElementId, IntoElement, KeyBinding, LayoutId, MouseButton,
    MouseDownEvent, MouseMoveEvent, MouseUpEvent, PaintQuad, Pixels, Point, Render, ShapedLine,
    SharedString, Style, TextRun, UTF16Selection, UnderlineStyle, Window, actions, div, fill,
    point, prelude::*, px, relative, size,
};
use unicode_segmentation::UnicodeSegmentation;

use crate::theme::Theme;

/// The key context a [`TextInput`] sets, which [`bind_keys`] binds its keys in.
const KEY_CONTEXT: &str = "TextInput";

/// A multi-line input grows with its text up to this many lines, then scrolls.
const MAX_VISIBLE_LINES: usize = 6;

/// The width of the cursor bar.
const CURSOR_WIDTH: Pixels = px(2.);

/// What a masked input paints for each grapheme of the text.
const MASK_CHAR: char = '•';

/// The modifier that moves or deletes by word: Option on macOS, Ctrl elsewhere.
const WORD_MODIFIER: &str = if cfg!(target_os = "macos") {
    "alt"
} else {
    "ctrl"
};

// ---------------------------------------------------------------------------------------------
// The editing core
// ---------------------------------------------------------------------------------------------

/// Plain text being edited, with a selection, and no user interface.
///
/// Offsets are byte offsets into [`EditBuffer::text`]. Every operation keeps them on grapheme
/// boundaries, except [`EditBuffer::replace`] and [`EditBuffer::set_selection`] (used by input
/// methods, which may work inside a grapheme) which only keep them on `char` boundaries.
/// Lines are separated by `'\n'`.
#[derive(Debug, Clone, Default)]
pub struct EditBuffer {
    text: String,
    /// The selected bytes; empty when there is just a cursor.
    selection: Range<usize>,
    /// Whether the cursor is at `selection.start` rather than at `selection.end`.
    reversed: bool,
    /// The column (in graphemes) that moving up and down aims for, remembered across a run of
    /// vertical moves so that passing through a short line does not lose it.
    goal_column: Option<usize>,
}

impl EditBuffer {
    /// An empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The whole text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the text is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The selected byte range (empty when nothing is selected: then it is the cursor).
    #[must_use]
    pub fn selection(&self) -> Range<usize> {
        self.selection.clone()
    }

    /// Whether the cursor is at the start of the selection (it was made leftwards or upwards).
    #[must_use]
    pub fn is_reversed(&self) -> bool {
        self.reversed
    }

    /// The cursor: the end of the selection that moves.
    #[must_use]
    pub fn cursor(&self) -> usize {
        if self.reversed {
            self.selection.start
        } else {
            self.selection.end
        }
    }

    /// The selected text.
    #[must_use]
    pub fn selected_text(&self) -> &str {
        &self.text[self.selection.clone()]
    }

    /// Replaces the whole text and puts the cursor at its end. Returns whether the text changed.
    pub fn set_text(&mut self, text: impl Into<String>) -> bool {
        let text = text.into();
        let changed = text != self.text;
        self.text = text;
        self.goal_column = None;
        self.collapse_to(self.text.len());
        changed
    }

    /// Empties the buffer. Returns whether the text changed.
    pub fn clear(&mut self) -> bool {
        self.set_text(String::new())
    }

    /// Types `text` over the selection, leaving the cursor after it.
    /// Returns whether the text changed.
    pub fn insert(&mut self, text: &str) -> bool {
        let changed = !(text.is_empty() && self.selection.is_empty());
        self.replace(self.selection(), text);
        changed
    }

    /// Replaces `range` (moved back to `char` boundaries if needed) by `text`, leaving the cursor
    /// after it, and returns where `text` now is.
    pub fn replace(&mut self, range: Range<usize>, text: &str) -> Range<usize> {
        let range = self.char_range(range);
        self.text.replace_range(range.clone(), text);
        let inserted = range.start..range.start + text.len();
        self.goal_column = None;
        self.collapse_to(inserted.end);
        inserted
    }

    /// Deletes the selection, or else the grapheme before the cursor.
    /// Returns whether the text changed.
    pub fn backspace(&mut self) -> bool {
        let cursor = self.cursor();
        self.delete_selection_or(self.prev_grapheme(cursor)..cursor)
    }

    /// Deletes the selection, or else the grapheme after the cursor.
    /// Returns whether the text changed.
    pub fn delete(&mut self) -> bool {
        let cursor = self.cursor();
        self.delete_selection_or(cursor..self.next_grapheme(cursor))
    }

    /// Deletes the selection, or else back to the start of the word before the cursor.
    /// Returns whether the text changed.
    pub fn delete_word_left(&mut self) -> bool {
        let cursor = self.cursor();
        self.delete_selection_or(self.word_start_before(cursor)..cursor)
    }

    /// Moves the cursor one grapheme left, or to the start of the selection if there is one.
    pub fn move_left(&mut self) {
        let to = if self.selection.is_empty() {
            self.prev_grapheme(self.cursor())
        } else {
            self.selection.start
        };
        self.move_to(to);
    }

    /// Moves the cursor one grapheme right, or to the end of the selection if there is one.
    pub fn move_right(&mut self) {
        let to = if self.selection.is_empty() {
            self.next_grapheme(self.cursor())
        } else {
            self.selection.end
        };
        self.move_to(to);
    }

    /// Moves the cursor to the start of the word before it (before the selection, if any).
    pub fn move_word_left(&mut self) {
        self.move_to(self.word_start_before(self.selection.start));
    }

    /// Moves the cursor to the end of the word after it (after the selection, if any).
    pub fn move_word_right(&mut self) {
        self.move_to(self.word_end_after(self.selection.end));
    }

    /// Moves the cursor one line up, keeping its column as far as the line allows; from the first
    /// line, to the start of the text.
    pub fn move_up(&mut self) {
        let to = self.vertical_target(self.selection.start, true);
        self.collapse_to(to);
    }

    /// Moves the cursor one line down, keeping its column as far as the line allows; from the last
    /// line, to the end of the text.
    pub fn move_down(&mut self) {
        let to = self.vertical_target(self.selection.end, false);
        self.collapse_to(to);
    }

    /// Moves the cursor to the start of its line.
    pub fn home(&mut self) {
        self.move_to(self.line_start(self.selection.start));
    }

    /// Moves the cursor to the end of its line.
    pub fn end(&mut self) {
        self.move_to(self.line_end(self.selection.end));
    }

    /// Extends the selection one grapheme left.
    pub fn select_left(&mut self) {
        self.select_to(self.prev_grapheme(self.cursor()));
    }

    /// Extends the selection one grapheme right.
    pub fn select_right(&mut self) {
        self.select_to(self.next_grapheme(self.cursor()));
    }

    /// Extends the selection to the start of the word before the cursor.
    pub fn select_word_left(&mut self) {
        self.select_to(self.word_start_before(self.cursor()));
    }

    /// Extends the selection to the end of the word after the cursor.
    pub fn select_word_right(&mut self) {
        self.select_to(self.word_end_after(self.cursor()));
    }

    /// Extends the selection one line up (see [`EditBuffer::move_up`]).
    pub fn select_up(&mut self) {
        let to = self.vertical_target(self.cursor(), true);
        self.extend_to(to);
    }

    /// Extends the selection one line down (see [`EditBuffer::move_down`]).
    pub fn select_down(&mut self) {
        let to = self.vertical_target(self.cursor(), false);
        self.extend_to(to);
    }

    /// Extends the selection to the start of the cursor's line.
    pub fn select_home(&mut self) {
        self.select_to(self.line_start(self.cursor()));
    }

    /// Extends the selection to the end of the cursor's line.
    pub fn select_end(&mut self) {
        self.select_to(self.line_end(self.cursor()));
    }

    /// Selects the whole text, with the cursor at its end.
    pub fn select_all(&mut self) {
        self.goal_column = None;
        self.selection = 0..self.text.len();
        self.reversed = false;
    }

    /// Selects the word (or the run of spaces or the punctuation) at `offset`.
    pub fn select_word_at(&mut self, offset: usize) {
        let offset = offset.min(self.text.len());
        let word = self
            .text
            .split_word_bound_indices()
            .map(|(start, word)| start..start + word.len())
            .find(|word| word.contains(&offset) || word.end == self.text.len())
            .unwrap_or(offset..offset);
        self.goal_column = None;
        self.selection = word;
        self.reversed = false;
    }

    /// Puts the cursor at `offset` (moved back to a grapheme boundary), without a selection.
    pub fn move_to(&mut self, offset: usize) {
        self.goal_column = None;
        self.collapse_to(self.grapheme_floor(offset));
    }

    /// Moves the cursor to `offset` (moved back to a grapheme boundary), selecting from the other
    /// end of the selection.
    pub fn select_to(&mut self, offset: usize) {
        self.goal_column = None;
        self.extend_to(self.grapheme_floor(offset));
    }

    /// Sets the selection (moved back to `char` boundaries if needed); `reversed` puts the cursor
    /// at its start.
    pub fn set_selection(&mut self, range: Range<usize>, reversed: bool) {
        self.goal_column = None;
        self.selection = self.char_range(range);
        self.reversed = reversed && !self.selection.is_empty();
    }

    /// The start of the line `offset` is on.
    fn line_start(&self, offset: usize) -> usize {
        self.text[..offset]
            .rfind('\n')
            .map_or(0, |newline| newline + 1)
    }

    /// The end of the line `offset` is on (before its `'\n'`, if any).
    fn line_end(&self, offset: usize) -> usize {
        self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |newline| offset + newline)
    }

    /// The grapheme boundary before `offset` (0 if none).
    fn prev_grapheme(&self, offset: usize) -> usize {
        self.text
            .grapheme_indices(true)
            .rev()
            .map(|(start, _)| start)
            .find(|&start| start < offset)
            .unwrap_or(0)
    }

    /// The grapheme boundary after `offset` (the end of the text if none).
    fn next_grapheme(&self, offset: usize) -> usize {
        self.text
            .grapheme_indices(true)
            .map(|(start, grapheme)| start + grapheme.len())
            .find(|&end| end > offset)
            .unwrap_or(self.text.len())
    }

    /// `offset`, or the grapheme boundary before it if it is inside a grapheme.
    fn grapheme_floor(&self, offset: usize) -> usize {
        if offset >= self.text.len() {
            return self.text.len();
        }
        self.text
            .grapheme_indices(true)
            .rev()
            .map(|(start, _)| start)
            .find(|&start| start <= offset)
            .unwrap_or(0)
    }

    /// `range` ordered, clamped to the text and moved back to `char` boundaries.
    fn char_range(&self, range: Range<usize>) -> Range<usize> {
        let start = self.text.floor_char_boundary(range.start.min(range.end));
        let end = self.text.floor_char_boundary(range.end.max(range.start));
        start..end
    }

    /// The start of the last word that starts before `offset` (0 if none).
    fn word_start_before(&self, offset: usize) -> usize {
        self.text
            .split_word_bound_indices()
            .rev()
            .find(|&(start, word)| start < offset && is_word(word))
            .map_or(0, |(start, _)| start)
    }

    /// The end of the first word that ends after `offset` (the end of the text if none).
    fn word_end_after(&self, offset: usize) -> usize {
        self.text
            .split_word_bound_indices()
            .filter(|&(_, word)| is_word(word))
            .map(|(start, word)| start + word.len())
            .find(|&end| end > offset)
            .unwrap_or(self.text.len())
    }

    /// Where moving up (or down) from `from` lands, aiming for the goal column.
    fn vertical_target(&mut self, from: usize, up: bool) -> usize {
        let start = self.line_start(from);
        let column = *self
            .goal_column
            .get_or_insert_with(|| self.text[start..from].graphemes(true).count());
        if up {
            if start == 0 {
                return 0;
            }
            let above = self.line_start(start - 1);
            self.offset_at_column(above..start - 1, column)
        } else {
            let end = self.line_end(from);
            if end == self.text.len() {
                return end;
            }
            let below = end + 1;
            self.offset_at_column(below..self.line_end(below), column)
        }
    }

    /// The offset `column` graphemes into `line`, or its end if it is shorter.
    fn offset_at_column(&self, line: Range<usize>, column: usize) -> usize {
        self.text[line.clone()]
            .grapheme_indices(true)
            .nth(column)
            .map_or(line.end, |(start, _)| line.start + start)
    }

    /// Deletes the selection if there is one, else `range`. Returns whether the text changed.
    fn delete_selection_or(&mut self, range: Range<usize>) -> bool {
        let range = if self.selection.is_empty() {
            range
        } else {
            self.selection()
        };
        self.replace(range.clone(), "");
        !range.is_empty()
    }

    /// Puts the cursor at `offset`, without a selection; keeps the goal column.
    fn collapse_to(&mut self, offset: usize) {
        self.selection = offset..offset;
        self.reversed = false;
    }

    /// Moves the cursor to `offset`, keeping the other end of the selection; keeps the goal column.
    fn extend_to(&mut self, offset: usize) {
        let anchor = if self.reversed {
            self.selection.end
        } else {
            self.selection.start
        };
        self.reversed = offset < anchor;
        self.selection = anchor.min(offset)..anchor.max(offset);
    }
}

/// Whether a word-boundary segment is a word (rather than spaces or punctuation).
fn is_word(segment: &str) -> bool {
    segment.chars().any(char::is_alphanumeric)
}

/// The byte ranges of the lines of `text`, without their `'\n'`; at least one.
fn line_ranges(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    text.split('\n').map(move |line| {
        let range = start..start + line.len();
        start = range.end + 1;
        range
    })
}

/// `text` with `"\r\n"` and `'\r'` turned into `'\n'`, and, unless `multiline`, every line
/// break into a space.
fn normalize_newlines(text: &str, multiline: bool) -> Cow<'_, str> {
    if !text.contains(['\r', '\n']) {
        return Cow::Borrowed(text);
    }
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    if multiline {
        Cow::Owned(unified)
    } else {
        Cow::Owned(unified.replace('\n', " "))
    }
}

/// The byte offset of the `utf16`th UTF-16 code unit of `text` (rounded up to a `char`).
fn utf16_to_byte(text: &str, utf16: usize) -> usize {
    let mut units = 0;
    for (byte, ch) in text.char_indices() {
        if units >= utf16 {
            return byte;
        }
        units += ch.len_utf16();
    }
    text.len()
}

/// The number of UTF-16 code units before the byte offset `byte` of `text`.
fn byte_to_utf16(text: &str, byte: usize) -> usize {
    text[..text.floor_char_boundary(byte)]
        .encode_utf16()
        .count()
}

fn utf16_range_to_bytes(text: &str, range: &Range<usize>) -> Range<usize> {
    let start = utf16_to_byte(text, range.start);
    start..utf16_to_byte(text, range.end).max(start)
}

fn byte_range_to_utf16(text: &str, range: &Range<usize>) -> Range<usize> {
    byte_to_utf16(text, range.start)..byte_to_utf16(text, range.end)
}

// ---------------------------------------------------------------------------------------------
// The gpui view
// ---------------------------------------------------------------------------------------------

actions!(
    text_input,
    [
        /// Delete the selection or the grapheme before the cursor.
        Backspace,
        /// Delete the selection or the grapheme after the cursor.
        Delete,
        /// Delete the selection or back to the start of the word.
        DeleteWordLeft,
        /// Move the cursor one grapheme left.
        Left,
        /// Move the cursor one grapheme right.
        Right,
        /// Move the cursor one line up.
        Up,
        /// Move the cursor one line down.
        Down,
        /// Move the cursor to the start of the word.
        WordLeft,
        /// Move the cursor to the end of the word.
        WordRight,
        /// Move the cursor to the start of the line.
        Home,
        /// Move the cursor to the end of the line.
        End,
        /// Extend the selection one grapheme left.
        SelectLeft,
        /// Extend the selection one grapheme right.
        SelectRight,
        /// Extend the selection one line up.
        SelectUp,
        /// Extend the selection one line down.
        SelectDown,
        /// Extend the selection to the start of the word.
        SelectWordLeft,
        /// Extend the selection to the end of the word.
        SelectWordRight,
        /// Extend the selection to the start of the line.
        SelectHome,
        /// Extend the selection to the end of the line.
        SelectEnd,
        /// Select the whole text.
        SelectAll,
        /// Copy the selection (not in a masked input).
        Copy,
        /// Cut the selection (not in a masked input).
        Cut,
        /// Paste the clipboard's text over the selection.
        Paste,
        /// Emit [`InputEvent::Submit`].
        Submit,
        /// Insert a line break (in a single-line input: submit).
        Newline,
    ]
);

/// Binds the [`TextInput`] keys, in the `"TextInput"` key context. Call once at start-up.
///
/// "secondary" is Cmd on macOS and Ctrl elsewhere; word motions use Option on macOS and Ctrl
/// elsewhere; macOS also gets Cmd-Left/Right for the line's start and end.
pub fn bind_keys(cx: &mut App) {
    let context = Some(KEY_CONTEXT);
    let word = |keys: &str| format!("{WORD_MODIFIER}-{keys}");
    cx.bind_keys([
        KeyBinding::new("backspace", Backspace, context),
        KeyBinding::new("shift-backspace", Backspace, context),
        KeyBinding::new("delete", Delete, context),
        KeyBinding::new(&word("backspace"), DeleteWordLeft, context),
        KeyBinding::new("left", Left, context),
        KeyBinding::new("right", Right, context),
        KeyBinding::new("up", Up, context),
        KeyBinding::new("down", Down, context),
        KeyBinding::new(&word("left"), WordLeft, context),
        KeyBinding::new(&word("right"), WordRight, context),
        KeyBinding::new("home", Home, context),
        KeyBinding::new("end", End, context),
        KeyBinding::new("shift-left", SelectLeft, context),
        KeyBinding::new("shift-right", SelectRight, context),
        KeyBinding::new("shift-up", SelectUp, context),
        KeyBinding::new("shift-down", SelectDown, context),
        KeyBinding::new(&word("shift-left"), SelectWordLeft, context),
        KeyBinding::new(&word("shift-right"), SelectWordRight, context),
        KeyBinding::new("shift-home", SelectHome, context),
        KeyBinding::new("shift-end", SelectEnd, context),
        KeyBinding::new("secondary-a", SelectAll, context),
        KeyBinding::new("secondary-c", Copy, context),
        KeyBinding::new("secondary-x", Cut, context),
        KeyBinding::new("secondary-v", Paste, context),
        KeyBinding::new("enter", Submit, context),
        KeyBinding::new("shift-enter", Newline, context),
    ]);
    if cfg!(target_os = "macos") {
        cx.bind_keys([
            KeyBinding::new("cmd-left", Home, context),
            KeyBinding::new("cmd-right", End, context),
            KeyBinding::new("cmd-shift-left", SelectHome, context),
            KeyBinding::new("cmd-shift-right", SelectEnd, context),
        ]);
    }
}

/// What a [`TextInput`] tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    /// The text changed: by the user, or by [`TextInput::set_text`] or [`TextInput::clear`].
    Changed,
    /// The user pressed Enter (or Shift+Enter in a single-line input). The owner reads
    /// [`TextInput::text`] and usually clears the input.
    Submit,
}

/// A text field: single-line, or multi-line growing up to six lines (then scrolling).
///
/// Enter emits [`InputEvent::Submit`]. In a multi-line input Shift+Enter inserts a line break; in
/// a single-line input it submits too (as in a web form), and pasted or typed line breaks become
/// spaces. Masked inputs (passwords) paint a bullet per grapheme and refuse to copy or cut.
/// Lines are not wrapped: a long line scrolls sideways to keep the cursor in view.
#[derive(Debug)]
pub struct TextInput {
    focus_handle: FocusHandle,
    buffer: EditBuffer,
    placeholder: SharedString,
    multiline: bool,
    masked: bool,
    /// The text an input method is composing, if any.
    marked_range: Option<Range<usize>>,
    /// What was last painted, for the mouse, the input method and the next frame's scrolling.
    layout: Option<TextLayout>,
    /// Whether a mouse drag is selecting.
    selecting: bool,
}

impl EventEmitter<InputEvent> for TextInput {}

impl TextInput {
    /// An empty input showing `placeholder`.
    pub fn new(
        placeholder: impl Into<SharedString>,
        multiline: bool,
        cx: &mut Context<Self>,
    ) -> Self {
        Self {
            focus_handle: cx.focus_handle(),
            buffer: EditBuffer::new(),
            placeholder: placeholder.into(),
            multiline,
            masked: false,
            marked_range: None,
            layout: None,
            selecting: false,
        }
    }

    /// The text.
    #[must_use]
    pub fn text(&self) -> &str {
        self.buffer.text()
    }

    /// Whether the text is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Replaces the text (line breaks become spaces in a single-line input) and puts the cursor
    /// at its end. Emits [`InputEvent::Changed`] if the text changed.
    pub fn set_text(&mut self, text: impl Into<String>, cx: &mut Context<Self>) {
        let text = text.into();
        let changed = self
            .buffer
            .set_text(normalize_newlines(&text, self.multiline));
        self.after_edit(changed, cx);
    }

    /// Empties the input. Emits [`InputEvent::Changed`] if it was not empty.
    pub fn clear(&mut self, cx: &mut Context<Self>) {
        let changed = self.buffer.clear();
        self.after_edit(changed, cx);
    }

    /// Makes this a password field (or not): each grapheme is painted as a bullet, and the text
    /// cannot be copied or cut. Takes effect at the next paint.
    pub fn set_masked(&mut self, masked: bool) {
        self.masked = masked;
    }

    /// Applies a cursor motion.
    fn navigate(&mut self, motion: fn(&mut EditBuffer), cx: &mut Context<Self>) {
        motion(&mut self.buffer);
        cx.notify();
    }

    /// Applies an edit that reports whether it changed the text.
    fn edit(&mut self, edit: impl FnOnce(&mut EditBuffer) -> bool, cx: &mut Context<Self>) {
        let changed = edit(&mut self.buffer);
        self.after_edit(changed, cx);
    }

    fn after_edit(&mut self, changed: bool, cx: &mut Context<Self>) {
        self.marked_range = None;
        if changed {
            cx.emit(InputEvent::Changed);
        }
        cx.notify();
    }

    /// The selection, if there is one and it may leave the input.
    fn copyable_selection(&self) -> Option<String> {
        let selected = self.buffer.selected_text();
        (!self.masked && !selected.is_empty()).then(|| selected.to_owned())
    }

    fn copy(&mut self, _: &Copy, _: &mut Window, cx: &mut Context<Self>) {
        if let Some(text) = self.copyable_selection() {
            cx.write_to_clipboard(ClipboardItem::new_string(text));
        }
    }

    fn cut(&mut self, _: &Cut, _: &mut Window, cx: &mut Context<Self>) {
        if let Some(text) = self.copyable_selection() {
            cx.write_to_clipboard(ClipboardItem::new_string(text));
            self.edit(|buffer| buffer.insert(""), cx);
        }
    }

    fn paste(&mut self, _: &Paste, _: &mut Window, cx: &mut Context<Self>) {
        if let Some(text) = cx.read_from_clipboard().and_then(|item| item.text()) {
            let text = normalize_newlines(&text, self.multiline);
            self.edit(|buffer| buffer.insert(&text), cx);
        }
    }

    fn newline(&mut self, _: &Newline, _: &mut Window, cx: &mut Context<Self>) {
        if self.multiline {
            self.edit(|buffer| buffer.insert("\n"), cx);
        } else {
            cx.emit(InputEvent::Submit);
        }
    }

    fn on_mouse_down(&mut self, event: &MouseDownEvent, _: &mut Window, cx: &mut Context<Self>) {
        let offset = self.offset_for_position(event.position);
        if event.modifiers.shift {
            self.buffer.select_to(offset);
        } else if event.click_count >= 2 {
            if self.masked {
                self.buffer.select_all();
            } else {
                self.buffer.select_word_at(offset);
            }
        } else {
            self.buffer.move_to(offset);
        }
        self.selecting = true;
        cx.notify();
    }

    /// The text offset under a window position, as last painted.
    fn offset_for_position(&self, position: Point<Pixels>) -> usize {
        let Some(layout) = &self.layout else {
            return self.buffer.text().len();
        };
        let viewport = &layout.viewport;
        let row = ((position.y - viewport.bounds.top()) / viewport.line_height).floor();
        let line_ix = viewport.scroll_top as f32 + row;
        if line_ix < 0. {
            return 0;
        }
        match layout.lines.get(line_ix as usize) {
            Some(line) => {
                line.offset_for_x(position.x - viewport.bounds.left() + viewport.scroll_x)
            }
            None => self.buffer.text().len(),
        }
    }

    /// The byte range an input method refers to: `range_utf16`, else the marked text, else the
    /// selection.
    fn ime_range(&self, range_utf16: Option<Range<usize>>) -> Range<usize> {
        range_utf16
            .map(|range| utf16_range_to_bytes(self.buffer.text(), &range))
            .or_else(|| self.marked_range.clone())
            .unwrap_or_else(|| self.buffer.selection())
    }
}

impl Focusable for TextInput {
    fn focus_handle(&self, _: &App) -> FocusHandle {
        self.focus_handle.clone()
    }
}

impl Render for TextInput {
    fn render(&mut self, window: &mut Window, cx: &mut Context<Self>) -> impl IntoElement {
        let theme = Theme::get(cx);
        let border = if self.focus_handle.is_focused(window) {
            theme.accent
        } else {
            theme.border
        };
        div()
            .key_context(KEY_CONTEXT)
            .track_focus(&self.focus_handle)
            .cursor(CursorStyle::IBeam)
            .w_full()
            .px_2()
            .py_1()
            .rounded_md()
            .border_1()
            .border_color(border)
            .bg(theme.elevated)
            .text_color(theme.text)
            .on_action(cx.listener(|this, _: &Backspace, _, cx| {
                this.edit(EditBuffer::backspace, cx);
            }))
            .on_action(cx.listener(|this, _: &Delete, _, cx| {
                this.edit(EditBuffer::delete, cx);
            }))
            .on_action(cx.listener(|this, _: &DeleteWordLeft, _, cx| {
                if this.masked {
                    // A password's words are nobody's business: delete to the line's start.
                    this.edit(
                        |buffer| {
                            if buffer.selection().is_empty() {
                                buffer.select_home();
                            }
                            buffer.backspace()
                        },
                        cx,
                    );
                } else {
                    this.edit(EditBuffer::delete_word_left, cx);
                }
            }))
            .on_action(cx.listener(|this, _: &Left, _, cx| {
                this.navigate(EditBuffer::move_left, cx);
            }))
            .on_action(cx.listener(|this, _: &Right, _, cx| {
                this.navigate(EditBuffer::move_right, cx);
            }))
            .on_action(cx.listener(|this, _: &Up, _, cx| {
                this.navigate(EditBuffer::move_up, cx);
            }))
            .on_action(cx.listener(|this, _: &Down, _, cx| {
                this.navigate(EditBuffer::move_down, cx);
            }))
            .on_action(cx.listener(|this, _: &WordLeft, _, cx| {
                let motion = if this.masked {
                    EditBuffer::home
                } else {
                    EditBuffer::move_word_left
                };
                this.navigate(motion, cx);
            }))
            .on_action(cx.listener(|this, _: &WordRight, _, cx| {
                let motion = if this.masked {
                    EditBuffer::end
                } else {
                    EditBuffer::move_word_right
                };
                this.navigate(motion, cx);
            }))
            .on_action(cx.listener(|this, _: &Home, _, cx| {
                this.navigate(EditBuffer::home, cx);
            }))
            .on_action(cx.listener(|this, _: &End, _, cx| {
                this.navigate(EditBuffer::end, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectLeft, _, cx| {
                this.navigate(EditBuffer::select_left, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectRight, _, cx| {
                this.navigate(EditBuffer::select_right, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectUp, _, cx| {
                this.navigate(EditBuffer::select_up, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectDown, _, cx| {
                this.navigate(EditBuffer::select_down, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectWordLeft, _, cx| {
                let motion = if this.masked {
                    EditBuffer::select_home
                } else {
                    EditBuffer::select_word_left
                };
                this.navigate(motion, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectWordRight, _, cx| {
                let motion = if this.masked {
                    EditBuffer::select_end
                } else {
                    EditBuffer::select_word_right
                };
                this.navigate(motion, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectHome, _, cx| {
                this.navigate(EditBuffer::select_home, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectEnd, _, cx| {
                this.navigate(EditBuffer::select_end, cx);
            }))
            .on_action(cx.listener(|this, _: &SelectAll, _, cx| {
                this.navigate(EditBuffer::select_all, cx);
            }))
            .on_action(cx.listener(Self::copy))
            .on_action(cx.listener(Self::cut))
            .on_action(cx.listener(Self::paste))
            .on_action(cx.listener(|_, _: &Submit, _, cx| cx.emit(InputEvent::Submit)))
            .on_action(cx.listener(Self::newline))
            .on_mouse_down(MouseButton::Left, cx.listener(Self::on_mouse_down))
            .child(TextArea { input: cx.entity() })
    }
}

impl EntityInputHandler for TextInput {
    fn text_for_range(
        &mut self,
        range_utf16: Range<usize>,
        adjusted_range: &mut Option<Range<usize>>,
        _: &mut Window,
        _: &mut Context<Self>,
    ) -> Option<String> {
        let text = self.buffer.text();
        let range = utf16_range_to_bytes(text, &range_utf16);
        *adjusted_range = Some(byte_range_to_utf16(text, &range));
        Some(text[range].to_owned())
    }

    fn selected_text_range(
        &mut self,
        _ignore_disabled_input: bool,
        _: &mut Window,
        _: &mut Context<Self>,
    ) -> Option<UTF16Selection> {
        Some(UTF16Selection {
            range: byte_range_to_utf16(self.buffer.text(), &self.buffer.selection()),
            reversed: self.buffer.is_reversed(),
        })
    }

    fn marked_text_range(&self, _: &mut Window, _: &mut Context<Self>) -> Option<Range<usize>> {
        self.marked_range
            .as_ref()
            .map(|range| byte_range_to_utf16(self.buffer.text(), range))
    }

    fn unmark_text(&mut self, _: &mut Window, cx: &mut Context<Self>) {
        self.marked_range = None;
        cx.notify();
    }

    fn replace_text_in_range(
        &mut self,
        range_utf16: Option<Range<usize>>,
        text: &str,
        _: &mut Window,
        cx: &mut Context<Self>,
    ) {
        let range = self.ime_range(range_utf16);
        let text = normalize_newlines(text, self.multiline);
        let changed = !(range.is_empty() && text.is_empty());
        self.buffer.replace(range, &text);
        self.after_edit(changed, cx);
    }

    fn replace_and_mark_text_in_range(
        &mut self,
        range_utf16: Option<Range<usize>>,
        new_text: &str,
        new_selected_range_utf16: Option<Range<usize>>,
        _: &mut Window,
        cx: &mut Context<Self>,
    ) {
        let range = self.ime_range(range_utf16);
        let text = normalize_newlines(new_text, self.multiline);
        let changed = !(range.is_empty() && text.is_empty());
        let inserted = self.buffer.replace(range, &text);
        self.after_edit(changed, cx);
        if !text.is_empty() {
            self.marked_range = Some(inserted.clone());
        }
        // The new selection is relative to the marked text.
        if let Some(selected) = new_selected_range_utf16 {
            let selected = utf16_range_to_bytes(&text, &selected);
            self.buffer.set_selection(
                inserted.start + selected.start..inserted.start + selected.end,
                false,
            );
        }
    }

    fn bounds_for_range(
        &mut self,
        range_utf16: Range<usize>,
        _element_bounds: Bounds<Pixels>,
        _: &mut Window,
        _: &mut Context<Self>,
    ) -> Option<Bounds<Pixels>> {
        let layout = self.layout.as_ref()?;
        let range = utf16_range_to_bytes(self.buffer.text(), &range_utf16);
        let line_ix = layout.line_index(range.start);
        let line = layout.lines.get(line_ix)?;
        let start = line.x_for_offset(range.start);
        let end = line.x_for_offset(range.end.min(line.range.end));
        let top_left = layout.viewport.origin(line_ix, start);
        Some(Bounds::new(
            top_left,
            size(end - start, layout.viewport.line_height),
        ))
    }

    fn character_index_for_point(
        &mut self,
        point: Point<Pixels>,
        _: &mut Window,
        _: &mut Context<Self>,
    ) -> Option<usize> {
        if !self.layout.as_ref()?.viewport.bounds.contains(&point) {
            return None;
        }
        let offset = self.offset_for_position(point);
        Some(byte_to_utf16(self.buffer.text(), offset))
    }
}

// ---------------------------------------------------------------------------------------------
// Layout and painting
// ---------------------------------------------------------------------------------------------

/// Where the text was painted, and how far it was scrolled.
#[derive(Debug, Clone, Copy)]
struct Viewport {
    /// The text area (inside the padding).
    bounds: Bounds<Pixels>,
    line_height: Pixels,
    /// The first visible line.
    scroll_top: usize,
    /// How far the lines are scrolled left.
    scroll_x: Pixels,
}

impl Viewport {
    /// The window position of the point `x` into line `line_ix`, at the line's top.
    fn origin(&self, line_ix: usize, x: Pixels) -> Point<Pixels> {
        let row = line_ix as f32 - self.scroll_top as f32;
        point(
            self.bounds.left() + x - self.scroll_x,
            self.bounds.top() + self.line_height * row,
        )
    }
}

/// One shaped line of the text.
#[derive(Debug)]
struct VisualLine {
    /// Where the line is in the text (without its `'\n'`).
    range: Range<usize>,
    /// The painted line: the text itself, or one bullet per grapheme when masked.
    shaped: ShapedLine,
    /// When masked: the line's grapheme boundaries, relative to its start, ending with its
    /// length. Bullet `i` stands for the grapheme that starts at `mask[i]`.
    mask: Option<Vec<usize>>,
}

impl VisualLine {
    /// The index in the painted line of the text offset `offset`.
    fn display_index(&self, offset: usize) -> usize {
        let relative = offset
            .saturating_sub(self.range.start)
            .min(self.range.len());
        match &self.mask {
            None => relative,
            Some(boundaries) => {
                let graphemes = boundaries
                    .partition_point(|&boundary| boundary <= relative)
                    .saturating_sub(1);
                graphemes * MASK_CHAR.len_utf8()
            }
        }
    }

    fn x_for_offset(&self, offset: usize) -> Pixels {
        self.shaped.x_for_index(self.display_index(offset))
    }

    /// The text offset nearest to `x` pixels into the line.
    fn offset_for_x(&self, x: Pixels) -> usize {
        let index = self.shaped.closest_index_for_x(x);
        let relative = match &self.mask {
            None => index,
            Some(boundaries) => boundaries
                .get(index / MASK_CHAR.len_utf8())
                .or(boundaries.last())
                .copied()
                .unwrap_or(0),
        };
        self.range.start + relative
    }
}

/// The last painted frame of a [`TextInput`].
#[derive(Debug)]
struct TextLayout {
    viewport: Viewport,
    lines: Vec<VisualLine>,
}

impl TextLayout {
    /// The line the text offset `offset` is on.
    fn line_index(&self, offset: usize) -> usize {
        line_index(&self.lines, offset)
    }
}

/// The index of the line of `lines` the text offset `offset` is on.
fn line_index(lines: &[VisualLine], offset: usize) -> usize {
    lines
        .partition_point(|line| line.range.end < offset)
        .min(lines.len().saturating_sub(1))
}

/// The text runs of a painted line of `len` bytes, with `marked` (relative to the line)
/// underlined.
fn runs_for_line(base: &TextRun, len: usize, marked: Option<Range<usize>>) -> Vec<TextRun> {
    let run = |len, underline| TextRun {
        len,
        underline,
        ..base.clone()
    };
    match marked {
        Some(marked) if !marked.is_empty() => {
            let underline = UnderlineStyle {
                thickness: px(1.),
                color: Some(base.color),
                wavy: false,
            };
            [
                run(marked.start, None),
                run(marked.len(), Some(underline)),
                run(len - marked.end, None),
            ]
            .into_iter()
            .filter(|run| run.len > 0)
            .collect()
        }
        _ => vec![run(len, None)],
    }
}

/// The element that lays out, paints and hit-tests a [`TextInput`]'s text.
struct TextArea {
    input: Entity<TextInput>,
}

/// What [`TextArea::prepaint`] hands to [`TextArea::paint`].
struct TextAreaPrepaint {
    viewport: Viewport,
    lines: Vec<VisualLine>,
    placeholder: Option<ShapedLine>,
    selections: Vec<PaintQuad>,
    cursor: PaintQuad,
}

impl IntoElement for TextArea {
    type Element = Self;

    fn into_element(self) -> Self::Element {
        self
    }
}

impl Element for TextArea {
    type RequestLayoutState = ();
    type PrepaintState = TextAreaPrepaint;

    fn id(&self) -> Option<ElementId> {
        None
    }

    fn source_location(&self) -> Option<&'static core::panic::Location<'static>> {
        None
    }

    fn request_layout(
        &mut self,
        _: Option<&GlobalElementId>,
        _: Option<&InspectorElementId>,
        window: &mut Window,
        cx: &mut App,
    ) -> (LayoutId, Self::RequestLayoutState) {
        let lines = line_ranges(self.input.read(cx).text()).count();
        let mut style = Style::default();
        style.size.width = relative(1.).into();
        style.size.height = (window.line_height() * lines.clamp(1, MAX_VISIBLE_LINES)).into();
        (window.request_layout(style, [], cx), ())
    }

    fn prepaint(
        &mut self,
        _: Option<&GlobalElementId>,
        _: Option<&InspectorElementId>,
        bounds: Bounds<Pixels>,
        _: &mut Self::RequestLayoutState,
        window: &mut Window,
        cx: &mut App,
    ) -> Self::PrepaintState {
        let input = self.input.read(cx);
        let theme = Theme::get(cx);
        let style = window.text_style();
        let font_size = style.font_size.to_pixels(window.rem_size());
        let line_height = window.line_height();
        let text = input.buffer.text();
        let base_run = TextRun {
            len: 0,
            font: style.font(),
            color: theme.text,
            background_color: None,
            underline: None,
            strikethrough: None,
        };

        let lines: Vec<VisualLine> = line_ranges(text)
            .map(|range| {
                let line = &text[range.clone()];
                let (display, mask, marked) = if input.masked {
                    let mut boundaries: Vec<usize> = line
                        .grapheme_indices(true)
                        .map(|(start, _)| start)
                        .collect();
                    let bullets = MASK_CHAR.to_string().repeat(boundaries.len());
                    boundaries.push(line.len());
                    (bullets, Some(boundaries), None)
                } else {
                    let marked = input.marked_range.as_ref().map(|marked| {
                        let start = marked.start.clamp(range.start, range.end);
                        let end = marked.end.clamp(range.start, range.end);
                        start - range.start..end - range.start
                    });
                    (line.to_owned(), None, marked)
                };
                let runs = runs_for_line(&base_run, display.len(), marked);
                let shaped =
                    window
                        .text_system()
                        .shape_line(display.into(), font_size, &runs, None);
                VisualLine {
                    range,
                    shaped,
                    mask,
                }
            })
            .collect();

        let placeholder = text.is_empty().then(|| {
            let placeholder: SharedString = input.placeholder.replace('\n', " ").into();
            let run = TextRun {
                len: placeholder.len(),
                color: theme.muted,
                ..base_run.clone()
            };
            window
                .text_system()
                .shape_line(placeholder, font_size, &[run], None)
        });

        // Scroll just enough to keep the cursor in view.
        let previous = input.layout.as_ref().map(|layout| layout.viewport);
        let visible = lines.len().min(MAX_VISIBLE_LINES);
        let cursor = input.buffer.cursor();
        let cursor_line = line_index(&lines, cursor);
        let mut scroll_top = previous
            .map_or(0, |viewport| viewport.scroll_top)
            .min(lines.len() - visible);
        if cursor_line < scroll_top {
            scroll_top = cursor_line;
        } else if cursor_line >= scroll_top + visible {
            scroll_top = cursor_line + 1 - visible;
        }
        let cursor_x = lines[cursor_line].x_for_offset(cursor);
        let room = (bounds.size.width - CURSOR_WIDTH).max(Pixels::ZERO);
        let widest = lines
            .iter()
            .map(|line| line.shaped.width)
            .max()
            .unwrap_or(Pixels::ZERO);
        let mut scroll_x = previous
            .map_or(Pixels::ZERO, |viewport| viewport.scroll_x)
            .min((widest - room).max(Pixels::ZERO));
        if cursor_x < scroll_x {
            scroll_x = cursor_x;
        } else if cursor_x > scroll_x + room {
            scroll_x = cursor_x - room;
        }
        let viewport = Viewport {
            bounds,
            line_height,
            scroll_top,
            scroll_x,
        };

        let selection = input.buffer.selection();
        let mut selections = Vec::new();
        if !selection.is_empty() {
            for (line_ix, line) in lines.iter().enumerate().skip(scroll_top).take(visible) {
                if selection.start > line.range.end || selection.end < line.range.start {
                    continue;
                }
                let start = line.x_for_offset(selection.start.max(line.range.start));
                let mut end = line.x_for_offset(selection.end.min(line.range.end));
                if selection.end > line.range.end {
                    // The line break is selected too: show it as a little extra width.
                    end += font_size * 0.5;
                }
                if end > start {
                    selections.push(fill(
                        Bounds::new(
                            viewport.origin(line_ix, start),
                            size(end - start, line_height),
                        ),
                        theme.selection,
                    ));
                }
            }
        }
        let cursor = fill(
            Bounds::new(
                viewport.origin(cursor_line, cursor_x),
                size(CURSOR_WIDTH, line_height),
            ),
            theme.accent,
        );

        TextAreaPrepaint {
            viewport,
            lines,
            placeholder,
            selections,
            cursor,
        }
    }

    fn paint(
        &mut self,
        _: Option<&GlobalElementId>,
        _: Option<&InspectorElementId>,
        bounds: Bounds<Pixels>,
        _: &mut Self::RequestLayoutState,
        prepaint: &mut Self::PrepaintState,
        window: &mut Window,
        cx: &mut App,
    ) {
        let focus_handle = self.input.read(cx).focus_handle.clone();
        window.handle_input(
            &focus_handle,
            ElementInputHandler::new(bounds, self.input.clone()),
            cx,
        );

        // Drag-selection follows the mouse even outside the input, until the button goes up.
        let input = self.input.clone();
        window.on_mouse_event(move |event: &MouseMoveEvent, phase, _, cx| {
            if phase == DispatchPhase::Bubble
                && event.pressed_button == Some(MouseButton::Left)
                && input.read(cx).selecting
            {
                input.update(cx, |input, cx| {
                    let offset = input.offset_for_position(event.position);
                    input.buffer.select_to(offset);
                    cx.notify();
                });
            }
        });
        let input = self.input.clone();
        window.on_mouse_event(move |_: &MouseUpEvent, phase, _, cx| {
            if phase == DispatchPhase::Bubble && input.read(cx).selecting {
                input.update(cx, |input, _| input.selecting = false);
            }
        });

        let viewport = prepaint.viewport;
        let lines = std::mem::take(&mut prepaint.lines);
        let visible = lines.len().min(MAX_VISIBLE_LINES);
        window.with_content_mask(Some(ContentMask { bounds }), |window| {
            for selection in prepaint.selections.drain(..) {
                window.paint_quad(selection);
            }
            let placeholder = prepaint.placeholder.iter().map(|line| (0, line));
            let text = lines
                .iter()
                .enumerate()
                .skip(viewport.scroll_top)
                .take(visible)
                .map(|(line_ix, line)| (line_ix, &line.shaped));
            for (line_ix, line) in placeholder.chain(text) {
                let origin = viewport.origin(line_ix, Pixels::ZERO);
                if let Err(error) = line.paint(origin, viewport.line_height, window, cx) {
                    tracing::warn!(%error, "could not paint a line of a text input");
                }
            }
            if focus_handle.is_focused(window) {
                window.paint_quad(prepaint.cursor.clone());
            }
        });

        self.input.update(cx, |input, _| {
            input.layout = Some(TextLayout { viewport, lines });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(text: &str) -> EditBuffer {
        let mut buffer = EditBuffer::new();
        buffer.set_text(text);
        buffer
    }

    #[test]
    fn insert_replaces_the_selection_and_reports_changes() {
        let mut b = EditBuffer::new();
        assert!(!b.insert(""));
        assert!(b.insert("hello"));
        assert_eq!((b.text(), b.cursor()), ("hello", 5));
        b.move_to(1);
        b.select_to(4);
        assert_eq!(b.selected_text(), "ell");
        assert!(b.insert("ipp"));
        assert_eq!(b.text(), "hippo");
        assert_eq!(b.selection(), 4..4);
    }

    #[test]
    fn set_text_and_clear_put_the_cursor_at_the_end() {
        let mut b = buffer("abc");
        assert_eq!(b.selection(), 3..3);
        assert!(!b.set_text("abc"), "same text is no change");
        assert!(b.clear());
        assert!(b.is_empty());
        assert_eq!(b.selection(), 0..0);
        assert!(!b.clear());
    }

    #[test]
    fn backspace_and_delete_remove_whole_graphemes() {
        // "é" as e + combining acute accent, a thumbs-up with a skin tone, a family (ZWJ).
        let family = "👨\u{200d}👩\u{200d}👧";
        let mut b = buffer(&format!("ae\u{301}👍🏽{family}z"));
        b.move_left();
        assert!(b.backspace());
        assert_eq!(b.text(), "ae\u{301}👍🏽z");
        assert!(b.backspace());
        assert_eq!(b.text(), "ae\u{301}z");
        assert!(b.backspace());
        assert_eq!(b.text(), "az");
        assert!(b.delete());
        assert_eq!(b.text(), "a");
        assert!(!b.delete(), "nothing after the cursor");
        b.move_to(0);
        assert!(!b.backspace(), "nothing before the cursor");
        assert_eq!(b.text(), "a");
    }

    #[test]
    fn backspace_and_delete_remove_the_selection() {
        let mut b = buffer("héllo");
        b.move_to(1);
        b.select_right();
        b.select_right();
        assert_eq!(b.selected_text(), "él");
        assert!(b.delete());
        assert_eq!(b.text(), "hlo");
        b.select_all();
        assert!(b.backspace());
        assert!(b.is_empty());
    }

    #[test]
    fn left_and_right_step_over_multibyte_characters() {
        let mut b = buffer("é😀");
        b.move_left();
        assert_eq!(b.cursor(), "é".len());
        b.move_left();
        assert_eq!(b.cursor(), 0);
        b.move_left();
        assert_eq!(b.cursor(), 0);
        b.move_right();
        assert_eq!(b.cursor(), 2);
        b.move_right();
        assert_eq!(b.cursor(), 6);
        b.move_right();
        assert_eq!(b.cursor(), 6);
    }

    #[test]
    fn left_and_right_collapse_a_selection_first() {
        let mut b = buffer("abcdef");
        b.move_to(2);
        b.select_to(4);
        b.move_left();
        assert_eq!(b.selection(), 2..2);
        b.select_to(4);
        b.move_right();
        assert_eq!(b.selection(), 4..4);
    }

    #[test]
    fn selecting_leftwards_reverses_the_selection() {
        let mut b = buffer("abcd");
        b.move_to(2);
        b.select_left();
        b.select_left();
        assert_eq!(b.selection(), 0..2);
        assert!(b.is_reversed());
        assert_eq!(b.cursor(), 0);
        b.select_right();
        b.select_right();
        b.select_right();
        assert_eq!(b.selection(), 2..3);
        assert!(!b.is_reversed());
        assert_eq!(b.cursor(), 3);
    }

    #[test]
    fn word_motions_skip_spaces_and_punctuation() {
        let mut b = buffer("héllo, wörld  foo");
        b.move_word_left();
        assert_eq!(&b.text()[b.cursor()..], "foo");
        b.move_word_left();
        assert_eq!(&b.text()[b.cursor()..], "wörld  foo");
        b.move_word_left();
        assert_eq!(b.cursor(), 0);
        b.move_word_left();
        assert_eq!(b.cursor(), 0);
        b.move_word_right();
        assert_eq!(&b.text()[..b.cursor()], "héllo");
        b.move_word_right();
        assert_eq!(&b.text()[..b.cursor()], "héllo, wörld");
        b.move_to(2);
        b.move_word_right();
        assert_eq!(
            &b.text()[..b.cursor()],
            "héllo",
            "from inside a word to its end"
        );
        b.end();
        b.move_word_right();
        assert_eq!(b.cursor(), b.text().len());
    }

    #[test]
    fn word_selection_and_deletion() {
        let mut b = buffer("one two three");
        b.select_word_left();
        assert_eq!(b.selected_text(), "three");
        b.select_word_left();
        assert_eq!(b.selected_text(), "two three");
        b.move_to(0);
        b.select_word_right();
        assert_eq!(b.selected_text(), "one");
        b.end();
        assert!(b.delete_word_left());
        assert_eq!(b.text(), "one two ");
        assert!(b.delete_word_left());
        assert_eq!(b.text(), "one ");
    }

    #[test]
    fn select_word_at_picks_the_word_under_the_offset() {
        let mut b = buffer("say héllo now");
        b.select_word_at(6);
        assert_eq!(b.selected_text(), "héllo");
        b.select_word_at(3);
        assert_eq!(b.selected_text(), " ");
        b.select_word_at(b.text().len());
        assert_eq!(b.selected_text(), "now");
        let mut empty = EditBuffer::new();
        empty.select_word_at(0);
        assert_eq!(empty.selection(), 0..0);
    }

    #[test]
    fn home_and_end_stay_on_the_current_line() {
        let mut b = buffer("first\nsecond\nthird");
        b.move_to(9);
        b.home();
        assert_eq!(b.cursor(), 6);
        b.end();
        assert_eq!(b.cursor(), 12);
        b.move_to(9);
        b.select_home();
        assert_eq!(b.selected_text(), "sec");
        b.move_to(9);
        b.select_end();
        assert_eq!(b.selected_text(), "ond");
    }

    #[test]
    fn up_and_down_keep_the_column_through_short_lines() {
        let mut b = buffer("long line\nab\nanother line");
        b.move_to(7); // "long li|ne"
        b.move_down();
        assert_eq!(b.cursor(), 12, "end of the short line");
        b.move_down();
        assert_eq!(&b.text()[b.cursor()..], " line", "column 7 again");
        b.move_down();
        assert_eq!(
            b.cursor(),
            b.text().len(),
            "down from the last line goes to the end"
        );
        b.move_up();
        assert_eq!(b.cursor(), 12, "still aiming for column 7");
        b.move_up();
        assert_eq!(b.cursor(), 7);
        b.move_up();
        assert_eq!(b.cursor(), 0, "up from the first line goes to the start");
    }

    #[test]
    fn up_and_down_count_columns_in_graphemes() {
        let mut b = buffer("é😀x\nabc");
        b.move_to(b.text().len() - 1); // "ab|c"
        b.move_up();
        assert_eq!(&b.text()[b.cursor()..], "x\nabc");
        b.move_right();
        b.move_down();
        assert_eq!(b.cursor(), b.text().len());
    }

    #[test]
    fn horizontal_motion_forgets_the_goal_column() {
        let mut b = buffer("abcdef\nab\nabcdef");
        b.move_to(5);
        b.move_down();
        b.move_left();
        b.move_down();
        assert_eq!(b.cursor(), 11, "column 1 of the last line");
    }

    #[test]
    fn vertical_selection() {
        let mut b = buffer("abc\ndef\nghi");
        b.move_to(5);
        b.select_up();
        assert_eq!(b.selected_text(), "bc\nd");
        assert!(b.is_reversed());
        b.select_down();
        assert_eq!(b.selection(), 5..5);
        b.select_down();
        assert_eq!(b.selected_text(), "ef\ng");
        b.move_up();
        assert_eq!(
            b.selection(),
            1..1,
            "up collapses to the start, then moves up"
        );
    }

    #[test]
    fn select_all_and_selected_text() {
        let mut b = buffer("a\nb😀");
        b.select_all();
        assert_eq!(b.selected_text(), "a\nb😀");
        assert_eq!(b.cursor(), b.text().len());
    }

    #[test]
    fn offsets_from_outside_are_clamped_to_boundaries() {
        let mut b = buffer("a😀b");
        b.move_to(3); // inside the emoji
        assert_eq!(b.cursor(), 1);
        b.move_to(100);
        assert_eq!(b.cursor(), 6);
        b.set_selection(2..100, true);
        assert_eq!(b.selection(), 1..6);
        assert_eq!(b.cursor(), 1);
        let reversed = Range { start: 4, end: 2 };
        assert_eq!(b.replace(reversed, "é"), 1..3);
        assert_eq!(b.text(), "aé😀b");
    }

    #[test]
    fn newlines_are_normalized() {
        assert_eq!(normalize_newlines("a\r\nb\rc\nd", true), "a\nb\nc\nd");
        assert_eq!(normalize_newlines("a\r\nb\rc\nd", false), "a b c d");
        assert!(matches!(
            normalize_newlines("plain", false),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn utf16_conversions() {
        let text = "aé😀b";
        assert_eq!(byte_to_utf16(text, 0), 0);
        assert_eq!(byte_to_utf16(text, 3), 2);
        assert_eq!(byte_to_utf16(text, 7), 4);
        assert_eq!(byte_to_utf16(text, text.len()), 5);
        assert_eq!(utf16_to_byte(text, 2), 3);
        assert_eq!(
            utf16_to_byte(text, 3),
            7,
            "inside a surrogate pair rounds up"
        );
        assert_eq!(utf16_to_byte(text, 4), 7);
        assert_eq!(utf16_to_byte(text, 99), text.len());
        let reversed = Range { start: 3, end: 1 };
        assert_eq!(utf16_range_to_bytes(text, &reversed), 7..7);
    }

    #[test]
    fn line_ranges_cover_every_line() {
        let ranges: Vec<_> = line_ranges("ab\n\ncd").collect();
        assert_eq!(ranges, [0..2, 3..3, 4..6]);
        let mut empty = line_ranges("");
        assert_eq!(empty.next(), Some(0..0));
        assert_eq!(empty.next(), None);
    }
}

#[cfg(test)]
mod view_tests {
    use gpui::{Modifiers, Subscription, TestAppContext, VisualTestContext};

    use super::*;

    /// A window's root view holding an input, which, like a real owner, takes the text on
    /// Submit and clears the input.
    struct Harness {
        input: Entity<TextInput>,
        submitted: Vec<String>,
        changes: usize,
        _subscription: Subscription,
    }

    impl Render for Harness {
        fn render(&mut self, _: &mut Window, _: &mut Context<Self>) -> impl IntoElement {
            div().size_full().child(self.input.clone())
        }
    }

    /// Opens a window with a focused input, the keys bound.
    fn open(
        cx: &mut TestAppContext,
        multiline: bool,
        masked: bool,
    ) -> (Entity<Harness>, Entity<TextInput>, &mut VisualTestContext) {
        cx.update(bind_keys);
        let (harness, cx) = cx.add_window_view(|_, cx| {
            let input = cx.new(|cx| {
                let mut input = TextInput::new("Message", multiline, cx);
                input.set_masked(masked);
                input
            });
            let subscription = cx.subscribe(
                &input,
                |harness: &mut Harness, input, event: &InputEvent, cx| match event {
                    InputEvent::Changed => harness.changes += 1,
                    InputEvent::Submit => {
                        harness.submitted.push(input.read(cx).text().to_owned());
                        input.update(cx, |input, cx| input.clear(cx));
                    }
                },
            );
            Harness {
                input,
                submitted: Vec::new(),
                changes: 0,
                _subscription: subscription,
            }
        });
        let input = harness.read_with(cx, |harness, _| harness.input.clone());
        cx.update(|window, cx| window.focus(&input.read(cx).focus_handle(cx)));
        cx.run_until_parked();
        (harness, input, cx)
    }

    fn text(input: &Entity<TextInput>, cx: &VisualTestContext) -> String {
        input.read_with(cx, |input, _| input.text().to_owned())
    }

    fn submitted(harness: &Entity<Harness>, cx: &VisualTestContext) -> Vec<String> {
        harness.read_with(cx, |harness, _| harness.submitted.clone())
    }

    fn clipboard_text(cx: &VisualTestContext) -> Option<String> {
        cx.read_from_clipboard().and_then(|item| item.text())
    }

    /// The window position of text offset `offset`, halfway down its line, as last painted.
    fn position_of(
        input: &Entity<TextInput>,
        offset: usize,
        cx: &VisualTestContext,
    ) -> Point<Pixels> {
        input.read_with(cx, |input, _| {
            let layout = input.layout.as_ref().expect("the input was painted");
            let line_ix = layout.line_index(offset);
            let x = layout.lines[line_ix].x_for_offset(offset);
            layout.viewport.origin(line_ix, x) + point(px(0.), layout.viewport.line_height * 0.5)
        })
    }

    #[gpui::test]
    fn multiline_shift_enter_breaks_the_line_and_enter_submits(cx: &mut TestAppContext) {
        let (harness, input, cx) = open(cx, true, false);
        cx.simulate_input("hello");
        cx.simulate_keystrokes("shift-enter");
        cx.simulate_input("world");
        assert_eq!(text(&input, cx), "hello\nworld");
        assert!(submitted(&harness, cx).is_empty());

        cx.simulate_keystrokes("enter");
        assert_eq!(submitted(&harness, cx), ["hello\nworld"]);
        assert_eq!(text(&input, cx), "", "the owner cleared it");
        assert!(harness.read_with(cx, |harness, _| harness.changes) >= 12);
    }

    #[gpui::test]
    fn single_line_shift_enter_submits_and_newlines_become_spaces(cx: &mut TestAppContext) {
        let (harness, input, cx) = open(cx, false, false);
        cx.simulate_input("hello");
        cx.simulate_keystrokes("shift-enter");
        assert_eq!(
            submitted(&harness, cx),
            ["hello"],
            "submitted without a line break"
        );

        cx.write_to_clipboard(ClipboardItem::new_string("one\r\ntwo\nthree".into()));
        cx.simulate_keystrokes("secondary-v");
        assert_eq!(text(&input, cx), "one two three");
        input.update(cx, |input, cx| input.set_text("a\nb", cx));
        assert_eq!(text(&input, cx), "a b");
    }

    #[gpui::test]
    fn copy_paste_and_cut_go_through_the_clipboard(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, true, false);
        cx.simulate_input("héllo 👋");
        cx.simulate_keystrokes("secondary-a secondary-c");
        assert_eq!(clipboard_text(cx).as_deref(), Some("héllo 👋"));

        cx.simulate_keystrokes("right secondary-v");
        assert_eq!(text(&input, cx), "héllo 👋héllo 👋");

        cx.simulate_keystrokes("shift-left shift-left secondary-x");
        assert_eq!(clipboard_text(cx).as_deref(), Some(" 👋"));
        assert_eq!(text(&input, cx), "héllo 👋héllo");
        cx.simulate_keystrokes("home secondary-v");
        assert_eq!(text(&input, cx), " 👋héllo 👋héllo");
    }

    #[gpui::test]
    fn backspace_removes_a_whole_emoji(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, false, false);
        // Typed one code point at a time: thumbs up, then the skin-tone modifier.
        cx.simulate_input("a👍🏽");
        assert_eq!(text(&input, cx), "a👍🏽");
        cx.simulate_keystrokes("backspace");
        assert_eq!(text(&input, cx), "a");
        cx.simulate_input("é");
        cx.simulate_keystrokes("left backspace");
        assert_eq!(text(&input, cx), "é");
    }

    #[gpui::test]
    fn masked_input_never_reveals_the_password(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, false, true);
        cx.simulate_input("hunter2");
        cx.write_to_clipboard(ClipboardItem::new_string("before".into()));
        cx.simulate_keystrokes("secondary-a secondary-c");
        assert_eq!(clipboard_text(cx).as_deref(), Some("before"));
        cx.simulate_keystrokes("secondary-x");
        assert_eq!(clipboard_text(cx).as_deref(), Some("before"));
        assert_eq!(text(&input, cx), "hunter2", "cut did not delete either");

        let painted = input.read_with(cx, |input, _| {
            let layout = input.layout.as_ref().expect("the input was painted");
            layout.lines[0].shaped.text.to_string()
        });
        assert_eq!(painted, "•••••••");
    }

    #[gpui::test]
    fn keyboard_navigation(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, true, false);
        cx.simulate_input("hello world");
        cx.simulate_keystrokes(&format!("{WORD_MODIFIER}-left"));
        cx.simulate_input("big ");
        assert_eq!(text(&input, cx), "hello big world");

        cx.simulate_keystrokes("end shift-enter");
        cx.simulate_input("ab");
        cx.simulate_keystrokes("up");
        cx.simulate_input("X");
        assert_eq!(text(&input, cx), "heXllo big world\nab");

        cx.simulate_keystrokes("down shift-home backspace");
        assert_eq!(text(&input, cx), "heXllo big world\n");
        cx.simulate_keystrokes(&format!("backspace {WORD_MODIFIER}-backspace"));
        assert_eq!(text(&input, cx), "heXllo big ");
    }

    #[gpui::test]
    fn mouse_clicks_and_drags_place_the_cursor_and_select(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, true, false);
        input.update(cx, |input, cx| input.set_text("hello\nworld", cx));
        cx.run_until_parked();

        let on_o = position_of(&input, 4, cx);
        cx.simulate_click(on_o, Modifiers::none());
        cx.simulate_input("X");
        assert_eq!(text(&input, cx), "hellXo\nworld");

        let second_line = position_of(&input, 9, cx);
        cx.simulate_click(second_line, Modifiers::shift());
        let selected = input.read_with(cx, |input, _| input.buffer.selected_text().to_owned());
        assert_eq!(selected, "o\nwo");

        let start = position_of(&input, 7, cx);
        let end = position_of(&input, 10, cx);
        cx.simulate_mouse_down(start, MouseButton::Left, Modifiers::none());
        cx.simulate_mouse_move(end, MouseButton::Left, Modifiers::none());
        cx.simulate_mouse_up(end, MouseButton::Left, Modifiers::none());
        let selected = input.read_with(cx, |input, _| input.buffer.selected_text().to_owned());
        assert_eq!(selected, "wor");

        let in_hello = position_of(&input, 2, cx);
        cx.simulate_event(MouseDownEvent {
            position: in_hello,
            modifiers: Modifiers::none(),
            button: MouseButton::Left,
            click_count: 2,
            first_mouse: false,
        });
        cx.simulate_mouse_up(in_hello, MouseButton::Left, Modifiers::none());
        let selected = input.read_with(cx, |input, _| input.buffer.selected_text().to_owned());
        assert_eq!(selected, "hellXo", "a double click selects the word");
    }

    #[gpui::test]
    fn height_grows_with_the_lines_up_to_six(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, true, false);
        let viewport = |cx: &VisualTestContext| {
            input.read_with(cx, |input, _| {
                input
                    .layout
                    .as_ref()
                    .expect("the input was painted")
                    .viewport
            })
        };
        let one = viewport(cx);
        assert_eq!(one.bounds.size.height, one.line_height);

        input.update(cx, |input, cx| input.set_text("1\n2\n3", cx));
        cx.run_until_parked();
        assert_eq!(viewport(cx).bounds.size.height, one.line_height * 3);

        input.update(cx, |input, cx| {
            input.set_text("1\n2\n3\n4\n5\n6\n7\n8\n9\n10", cx)
        });
        cx.run_until_parked();
        let ten = viewport(cx);
        assert_eq!(ten.bounds.size.height, one.line_height * MAX_VISIBLE_LINES);
        assert_eq!(
            ten.scroll_top, 4,
            "scrolled to keep the cursor, at the end, in view"
        );
    }

    #[gpui::test]
    fn input_method_composition_and_utf16_offsets(cx: &mut TestAppContext) {
        let (_, input, cx) = open(cx, false, false);
        input.update_in(cx, |input, window, cx| {
            input.replace_and_mark_text_in_range(None, "ni", Some(2..2), window, cx);
            assert_eq!(input.marked_text_range(window, cx), Some(0..2));
            input.replace_text_in_range(None, "你", window, cx);
            assert_eq!(input.text(), "你");
            assert_eq!(input.marked_text_range(window, cx), None);

            input.set_text("a😀b", cx);
            let selection = input
                .selected_text_range(false, window, cx)
                .expect("there is a selection");
            assert_eq!(selection.range, 4..4);
            let mut adjusted = None;
            let emoji = input.text_for_range(1..3, &mut adjusted, window, cx);
            assert_eq!(emoji.as_deref(), Some("😀"));
            assert_eq!(adjusted, Some(1..3));
            input.replace_text_in_range(Some(1..3), "é", window, cx);
            assert_eq!(input.text(), "aéb");
        });
    }
}
