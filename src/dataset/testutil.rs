//! Test-only access to the Loghub 2k samples in `../shared/datasets/loghub/` and a small CSV
//! reader for their `*_structured.csv` ground truth (RFC 4180: quoted fields may hold commas,
//! doubled quotes and line breaks; rows end with CRLF or LF).

use std::path::PathBuf;

fn sample_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/loghub")
        .join(name)
}

fn read_sample(name: &str) -> String {
    let path = sample_path(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read sample {}: {err}", path.display()))
}

/// The raw lines of a sample log, line endings left for the parser to strip.
pub(crate) fn read_sample_log(name: &str) -> Vec<String> {
    let text = read_sample(name);
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    if lines.last().is_some_and(|last| last.is_empty()) {
        lines.pop();
    }
    lines
}

pub(crate) struct Csv {
    pub(crate) header: Vec<String>,
    pub(crate) records: Vec<Vec<String>>,
}

pub(crate) fn read_sample_csv(name: &str) -> Csv {
    let mut rows = parse_csv(&read_sample(name));
    assert!(!rows.is_empty(), "{name} is empty");
    let header = rows.remove(0);
    for (index, row) in rows.iter().enumerate() {
        assert_eq!(
            row.len(),
            header.len(),
            "{name} row {} has the wrong width",
            index + 1
        );
    }
    Csv {
        header,
        records: rows,
    }
}

/// Parses a whole CSV document into rows of fields.
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    // Whether the current row has any content yet, so a trailing newline adds no empty row.
    let mut row_started = false;
    while let Some(ch) = chars.next() {
        if in_quotes {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(ch),
            }
            continue;
        }
        match ch {
            '"' => {
                in_quotes = true;
                row_started = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                row_started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row_started {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                row_started = false;
            }
            _ => {
                field.push(ch);
                row_started = true;
            }
        }
    }
    if row_started {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_line_endings() {
        let text = "a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n2,,\"multi\nline\"\n3,last,";
        let rows = parse_csv(text);
        assert_eq!(
            rows,
            vec![
                vec!["a", "b", "c"],
                vec!["1", "x, y", "say \"hi\""],
                vec!["2", "", "multi\nline"],
                vec!["3", "last", ""],
            ]
        );
    }
}
