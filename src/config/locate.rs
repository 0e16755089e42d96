//! Finding the line of a setting in YAML text, so that a problem found after parsing
//! can still point at its line. Block-style YAML only (what people write by hand);
//! for flow style (`hash: {mode: x}`) the line of the deepest key found is returned.

/// One step of a path into the YAML text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// The n-th (0-based) item of a sequence.
    Item(usize),
}

/// Writes a path the way messages show it: `nodes[1].addr`.
pub fn path_text(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Item(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A meaningful line: 1-based number, indentation, text without the indentation.
#[derive(Clone, Copy, Debug)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

/// Line finder over one YAML text.
pub struct Locator<'a> {
    lines: Vec<Line<'a>>,
}

impl<'a> Locator<'a> {
    /// Indexes `text`, skipping blank lines, comments and document markers.
    pub fn new(text: &'a str) -> Locator<'a> {
        let lines = text
            .lines()
            .enumerate()
            .filter_map(|(i, raw)| {
                let text = raw.trim_start_matches(' ');
                let t = text.trim_end();
                let skip = t.is_empty() || t.starts_with('#') || t == "---" || t == "...";
                (!skip).then(|| Line {
                    no: i + 1,
                    indent: raw.len() - text.len(),
                    text,
                })
            })
            .collect();
        Locator { lines }
    }

    /// The 1-based line of the deepest part of `path` found in the text, or `None`
    /// when not even the first step is there.
    pub fn line(&self, path: &[Seg<'_>]) -> Option<usize> {
        let mut body = self.lines.clone();
        let mut found = None;
        for seg in path {
            let Some((no, next)) = step(&body, *seg) else {
                break;
            };
            found = Some(no);
            body = next;
        }
        found
    }
}

/// Finds `seg` among the direct children in `body`: its line number and its own body.
fn step<'a>(body: &[Line<'a>], seg: Seg<'_>) -> Option<(usize, Vec<Line<'a>>)> {
    let indent = body.iter().map(|l| l.indent).min()?;
    let at_level = |l: &Line<'_>| l.indent == indent;
    let i = match seg {
        Seg::Key(k) => body
            .iter()
            .position(|l| at_level(l) && key_of(l.text) == Some(k))?,
        Seg::Item(n) => {
            body.iter()
                .enumerate()
                .filter(|(_, l)| at_level(l) && is_item(l.text))
                .nth(n)?
                .0
        }
    };
    let head = body[i];
    let end = body[i + 1..]
        .iter()
        .position(|l| {
            l.indent < indent
                || (l.indent == indent && !(matches!(seg, Seg::Key(_)) && is_item(l.text)))
        })
        .map_or(body.len(), |p| i + 1 + p);
    let mut inner: Vec<Line<'a>> = body[i + 1..end].to_vec();
    if let (Seg::Item(_), Some(rest)) = (seg, head.text.strip_prefix('-')) {
        let content = rest.trim_start_matches(' ');
        if !content.trim().is_empty() {
            let indent = head.indent + head.text.len() - content.len();
            inner.insert(
                0,
                Line {
                    no: head.no,
                    indent,
                    text: content,
                },
            );
        }
    }
    Some((head.no, inner))
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// The key of a `key: value` / `key:` line, without quotes.
fn key_of(text: &str) -> Option<&str> {
    if let Some(q) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = text[1..].find(q)? + 1;
        return text[end + 1..]
            .trim_start()
            .starts_with(':')
            .then(|| &text[1..end]);
    }
    let colon = text
        .find(": ")
        .or_else(|| text.trim_end().strip_suffix(':').map(str::len))?;
    Some(text[..colon].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Seg::{Item, Key};

    const TEXT: &str = "# comment\nlisten: 127.0.0.1:6380\nnodes:\n  - addr: a:1\n    weight: 2\n  - name: b\n\n    addr: b:1\nhash:\n  mode: twemproxy\n\"quoted\": 1\nlist:\n- x\n- y\n";

    #[test]
    fn finds_keys_items_and_nested_keys() {
        let l = Locator::new(TEXT);
        assert_eq!(l.line(&[Key("listen")]), Some(2));
        assert_eq!(l.line(&[Key("nodes"), Item(0), Key("weight")]), Some(5));
        assert_eq!(l.line(&[Key("nodes"), Item(1), Key("addr")]), Some(8));
        assert_eq!(l.line(&[Key("nodes"), Item(1)]), Some(6));
        assert_eq!(l.line(&[Key("hash"), Key("mode")]), Some(10));
        assert_eq!(l.line(&[Key("quoted")]), Some(11));
        assert_eq!(l.line(&[Key("list"), Item(1)]), Some(14));
    }

    #[test]
    fn falls_back_to_the_deepest_part_found() {
        let l = Locator::new(TEXT);
        assert_eq!(l.line(&[Key("hash"), Key("tag")]), Some(9));
        assert_eq!(l.line(&[Key("nodes"), Item(5)]), Some(3));
        assert_eq!(l.line(&[Key("absent")]), None);
        assert_eq!(l.line(&[Key("weight")]), None);
    }

    #[test]
    fn paths_read_like_yaml() {
        assert_eq!(
            path_text(&[Key("nodes"), Item(1), Key("addr")]),
            "nodes[1].addr"
        );
        assert_eq!(path_text(&[Key("listen")]), "listen");
    }
}
