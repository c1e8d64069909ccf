//! Everything virtctl prints to stdout goes through [`Out`].
//!
//! - Pipe-safe: `println!` panics when the reader has gone (`virtctl list | head -1`); here a
//!   closed pipe becomes [`Error::BrokenPipe`], which `main` turns into a quiet exit 0.
//! - Buffered: a 1000-domain list is one write, not 1000.
//! - Three formats: `table` (virsh's text), `json` and `yaml` (the typed views of `view.rs`).

use std::io::{BufWriter, StdoutLock, Write};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The global `-o` choice.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// virsh's text output.
    #[default]
    Table,
    /// Pretty JSON (one compact object per line for `event`).
    Json,
    /// YAML.
    Yaml,
}

/// The stdout writer every command uses.
pub struct Out {
    w: BufWriter<StdoutLock<'static>>,
    pub format: Format,
}

impl Out {
    pub fn stdout(format: Format) -> Self {
        Out {
            w: BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
            format,
        }
    }

    /// Whether the command should print its virsh text rather than data.
    pub fn is_table(&self) -> bool {
        self.format == Format::Table
    }

    /// Writes one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> Result<(), Error> {
        writeln!(self.w, "{text}").map_err(Error::from_write)
    }

    /// Writes text as is (it carries its own newlines).
    pub fn raw(&mut self, text: &str) -> Result<(), Error> {
        self.bytes(text.as_bytes())
    }

    /// Writes bytes as they are: a guest's file or a guest program's output, which need
    /// not be text.
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), Error> {
        self.w.write_all(data).map_err(Error::from_write)
    }

    /// Prints typed data in the chosen machine format (pretty JSON or YAML).
    /// Table output is the caller's job, as each command has its own virsh layout.
    pub fn data<T: Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let text = render_data(self.format, value)?;
        self.raw(&text)
    }

    /// Prints typed data as one compact JSON line (or a YAML document), for streams that a
    /// reader consumes line by line.
    pub fn data_line<T: Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let text = match self.format {
            Format::Yaml => format!("---\n{}", render_data(Format::Yaml, value)?),
            _ => {
                let mut s = serde_json::to_string(value)
                    .map_err(|e| Error::Output(std::io::Error::other(e)))?;
                s.push('\n');
                s
            }
        };
        self.raw(&text)?;
        self.flush()
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        self.w.flush().map_err(Error::from_write)
    }
}

/// Renders data as pretty JSON or YAML, newline-terminated.
pub fn render_data<T: Serialize>(format: Format, value: &T) -> Result<String, Error> {
    let to_err = |e: String| Error::Output(std::io::Error::other(e));
    match format {
        Format::Yaml => serde_yaml_ng::to_string(value).map_err(|e| to_err(e.to_string())),
        Format::Json | Format::Table => {
            let mut s = serde_json::to_string_pretty(value).map_err(|e| to_err(e.to_string()))?;
            s.push('\n');
            Ok(s)
        }
    }
}

/// Writes a message to stderr; never panics, even if stderr is closed.
pub fn eprint_line(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// virsh's table layout (libvirt's `vshTable`): each cell is preceded by one space, columns
/// are left-aligned and separated by padding to the widest cell plus two spaces, the last
/// column is not padded, and the header is underlined by `width + 3` dashes per column.
pub fn virsh_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::with_capacity(64 + rows.len() * 48);
    let push_row = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        for (i, cell) in cells.iter().enumerate() {
            out.push(' ');
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    push_row(&mut out, &mut header.iter().copied());
    let dashes: usize = widths.iter().map(|w| w + 3).sum();
    out.extend(std::iter::repeat_n('-', dashes));
    out.push('\n');
    for row in rows {
        push_row(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// virsh's `key: value` lines (`%-15s %s` in dominfo, `%-20s %s` in nodeinfo).
pub fn key_values(width: usize, pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        out.push_str(&format!("{key:<width$} {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_virsh() {
        let t = virsh_table(
            &["Id", "Name", "State"],
            &[
                vec!["1".into(), "test".into(), "running".into()],
                vec!["-".into(), "web".into(), "shut off".into()],
            ],
        );
        let want = " Id   Name   State\n\
                    -----------------------\n \
                    1    test   running\n \
                    -    web    shut off\n";
        assert_eq!(t, want);
    }

    #[test]
    fn empty_table_has_header() {
        let t = virsh_table(&["Id", "Name", "State"], &[]);
        assert_eq!(t, " Id   Name   State\n--------------------\n");
    }

    #[test]
    fn key_value_padding() {
        let t = key_values(
            15,
            &[("Id:", "1".into()), ("Security model:", "none".into())],
        );
        assert_eq!(t, "Id:             1\nSecurity model: none\n");
    }

    #[test]
    fn data_formats() {
        #[derive(Serialize)]
        struct T {
            name: &'static str,
        }
        assert_eq!(
            render_data(Format::Json, &T { name: "web" }).unwrap(),
            "{\n  \"name\": \"web\"\n}\n"
        );
        assert_eq!(
            render_data(Format::Yaml, &T { name: "web" }).unwrap(),
            "name: web\n"
        );
    }
}
