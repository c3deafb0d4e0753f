"""The text-table renderer's PDF column widths (textable.pdf_dashes), checked against
widths worked out by hand from the rule: each column gets its widest unbreakable word,
then the wrapping columns share what is left of the line."""
from helpers.textable import PDF_CHAR_PT, PDF_GAP_PT, PDF_LINE_PT, pdf_dashes, pipe_table


def line_chars(columns: int) -> float:
    return (PDF_LINE_PT - PDF_GAP_PT * (columns - 1)) / PDF_CHAR_PT


def test_each_column_gets_its_widest_word_and_a_wrapping_column_the_rest():
    note = "a note long enough to wrap over several lines of its column " * 2
    header = ["Model", "Train time/epoch (s)", "Note"]
    dashes = pdf_dashes(header, [["ResNet-18", "4.72", note]])
    # ResNet-18 (9) and time/epoch (10) do not break; the note's longest word is 'several'
    # (7), and the line has room for it to grow to the cap of 30.
    assert line_chars(3) > 9 + 10 + 30
    assert dashes == [9, 10, 30]
    table = pipe_table(header, [["ResNet-18", "4.72", note]], "lrl", dashes)
    assert table.splitlines()[1].split("|")[2].strip() == "-" * 9 + ":"


def test_when_the_words_overfill_the_line_labels_stay_whole_and_other_words_break_at_hyphens():
    header = ["Model", "Setting"] + [f"column{i:04d}" for i in range(5)]   # 10-char words
    row = ["ViT (8L-8H-512)", "synthetic-tiny-images"] + ["1234.5"] * 5
    assert 15 + 21 + 5 * 10 > line_chars(7)                # both whole would not fit
    dashes = pdf_dashes(header, [row])
    # The label keeps its 15 characters; the setting breaks after 'synthetic-' (10).
    assert dashes == [15, 10] + [10] * 5


def test_no_word_is_hyphenated_inside():
    """A long word widens its column rather than being split in the PDF."""
    dashes = pdf_dashes(["Model", "Test accuracy (%)"], [["Swin-Tiny", "WeightsUnavailableError"]])
    assert dashes[1] >= len("WeightsUnavailableError")


def test_short_cells_stay_whole_and_code_never_breaks():
    dashes = pdf_dashes(["Seeds", "Most in"], [["3 seeds", "`p2-swin_small-scratch`"]])
    assert dashes == [7, 23]
