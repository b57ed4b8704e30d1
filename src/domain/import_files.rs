//! The export files `users import` reads — JSON Lines (or one JSON array, as `sqlite3 -json` writes), CSV with a header (`psql \copy … CSV HEADER`, `sqlite3 -csv -header`), and `mongoexport` output — as records with the line each starts on.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::import::plain_json;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Mongoexport,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "mongoexport" => Some(Format::Mongoexport),
            _ => None,
        }
    }
}

/// One record of the file: the line it starts on, and its fields or why it cannot be read.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: usize,
    pub fields: Result<Map<String, Value>, String>,
}

fn object(value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("not a JSON object but {}", kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Every record of `text`. A file that cannot be read as a whole (a JSON array that does not
/// parse, CSV without a header) is an error naming the line; a record that cannot be read is a
/// record with its reason, and the others are still read.
pub fn records(format: Format, text: &str) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = match format {
        Format::Csv => csv_records(text)?,
        Format::Jsonl | Format::Mongoexport => json_records(text)?,
    };
    if format == Format::Mongoexport {
        for r in &mut out {
            if let Ok(fields) = &mut r.fields {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(k, v)| (k, plain_json(v)))
                    .collect();
            }
        }
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|b| *b == b'\n').count() + 1
}

fn json_records(text: &str) -> Result<Vec<Record>, String> {
    if text.trim_start().starts_with('[') {
        // One array (`mongoexport --jsonArray`, `sqlite3 -json`): it parses as a whole or not at all.
        let items: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|e| format!("line {}: not a JSON array of objects: {e}", e.line()))?;
        return Ok(items
            .into_iter()
            .map(|raw| Record {
                line: line_of(text, raw.get().as_ptr() as usize - text.as_ptr() as usize),
                fields: serde_json::from_str(raw.get())
                    .map_err(|e| e.to_string())
                    .and_then(object),
            })
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Record {
            line: i + 1,
            fields: serde_json::from_str::<Value>(l)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(object),
        })
        .collect())
}

fn csv_records(text: &str) -> Result<Vec<Record>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("line 1: not a CSV header: {e}"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err("line 1: the CSV file has no header row".into());
    }
    let mut out = Vec::new();
    for row in reader.records() {
        let record = match row {
            Ok(row) => Record {
                line: row.position().map_or(0, |p| p.line() as usize),
                fields: Ok(headers
                    .iter()
                    .cloned()
                    .zip(row.iter().map(|v| match v {
                        "" => Value::Null,
                        v => Value::String(v.to_string()),
                    }))
                    .collect()),
            },
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                match e.into_kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => Record {
                        line,
                        fields: Err(format!("{len} fields where the header has {expected_len}")),
                    },
                    csv::ErrorKind::Utf8 { .. } => Record {
                        line,
                        fields: Err("not UTF-8".into()),
                    },
                    other => return Err(format!("line {line}: {other:?}")),
                }
            }
        };
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(rs: &[Record]) -> Vec<usize> {
        rs.iter().map(|r| r.line).collect()
    }

    #[test]
    fn json_lines_and_arrays_keep_their_line_numbers() {
        let text = "{\"email\": \"a@x.io\"}\n\n[1]\nnope\n{\"email\": \"b@x.io\"}\n";
        let rs = records(Format::Jsonl, text).unwrap();
        assert_eq!(lines(&rs), vec![1, 3, 4, 5]);
        assert!(rs[0].fields.is_ok() && rs[3].fields.is_ok());
        assert!(
            rs[1]
                .fields
                .as_ref()
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(rs[2].fields.as_ref().unwrap_err().contains("not JSON"));
        // As `sqlite3 -json` writes it.
        let text = "[{\"email\":\"a@x.io\"},\n{\"email\":\"b@x.io\"},\n7]\n";
        let rs = records(Format::Jsonl, text).unwrap();
        assert_eq!(lines(&rs), vec![1, 2, 3]);
        assert!(rs[2].fields.is_err());
        let err =
            records(Format::Mongoexport, "[{\"email\":\"a@x.io\"},\n{\"email\":").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn mongoexport_documents_lose_their_extended_json() {
        let text =
            "{\"_id\":{\"$oid\":\"65f0\"},\"createdAt\":{\"$date\":\"2024-01-02T03:04:05Z\"}}\n";
        let rs = records(Format::Mongoexport, text).unwrap();
        assert_eq!(
            Value::Object(rs[0].fields.clone().unwrap()),
            json!({"_id": "65f0", "createdAt": "2024-01-02T03:04:05+00:00"})
        );
    }

    #[test]
    fn csv_rows_are_strings_with_empty_as_null() {
        let text =
            "email,role,active\na@x.io,admin,t\n\"b@x.io\",,f\nc@x.io,user\n\"d\nx@x.io\",user,1\n";
        let rs = records(Format::Csv, text).unwrap();
        assert_eq!(lines(&rs), vec![2, 3, 4, 5]);
        assert_eq!(
            Value::Object(rs[1].fields.clone().unwrap()),
            json!({"email": "b@x.io", "role": null, "active": "f"})
        );
        assert!(rs[2].fields.as_ref().unwrap_err().contains("2 fields"));
        assert!(records(Format::Csv, "").is_err());
    }
}
