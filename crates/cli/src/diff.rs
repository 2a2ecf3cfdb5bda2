//! A small line diff (longest common subsequence) with unified-style
//! hunks, for `tilewave tile diff`. Configurations are a few hundred lines,
//! so the quadratic table is cheap; no diff crate is needed.

use std::fmt::Write as _;

use serde::Serialize;

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "op", content = "text", rename_all = "lowercase")]
pub enum Line<'a> {
    /// In both.
    Same(&'a str),
    /// Only in the old text.
    Removed(&'a str),
    /// Only in the new text.
    Added(&'a str),
}

/// The lines of `old` and `new` as an edit script, in order.
pub fn diff_lines<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n.max(m));
    while i < n && j < m {
        if a[i] == b[j] {
            out.push(Line::Same(a[i]));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(Line::Removed(a[i]));
            i += 1;
        } else {
            out.push(Line::Added(b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| Line::Removed(l)));
    out.extend(b[j..].iter().map(|l| Line::Added(l)));
    out
}

/// A unified diff with `context` lines around each change; empty when the
/// texts have the same lines.
pub fn unified(old_label: &str, new_label: &str, lines: &[Line<'_>], context: usize) -> String {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, Line::Same(_)))
        .map(|(i, _)| i)
        .collect();
    if changed.is_empty() {
        return String::new();
    }
    // Group changes whose context overlaps into hunks of [start, end).
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &c in &changed {
        let start = c.saturating_sub(context);
        let end = (c + context + 1).min(lines.len());
        match hunks.last_mut() {
            Some(h) if start <= h.1 => h.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    let mut out = format!("--- {old_label}\n+++ {new_label}\n");
    for (start, end) in hunks {
        // Line numbers (1-based) where the hunk starts in each text.
        let old_before = lines[..start]
            .iter()
            .filter(|l| !matches!(l, Line::Added(_)))
            .count();
        let new_before = lines[..start]
            .iter()
            .filter(|l| !matches!(l, Line::Removed(_)))
            .count();
        let body = &lines[start..end];
        let old_len = body.iter().filter(|l| !matches!(l, Line::Added(_))).count();
        let new_len = body.iter().filter(|l| !matches!(l, Line::Removed(_))).count();
        let _ = writeln!(
            out,
            "@@ -{},{old_len} +{},{new_len} @@",
            old_before + 1,
            new_before + 1
        );
        for l in body {
            let _ = match l {
                Line::Same(t) => writeln!(out, " {t}"),
                Line::Removed(t) => writeln!(out, "-{t}"),
                Line::Added(t) => writeln!(out, "+{t}"),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_have_no_diff() {
        let l = diff_lines("a\nb\n", "a\nb\n");
        assert!(l.iter().all(|x| matches!(x, Line::Same(_))));
        assert_eq!(unified("a", "b", &l, 3), "");
    }

    #[test]
    fn edit_scripts() {
        let cases: &[(&str, &str, &[Line<'static>])] = &[
            ("", "x", &[Line::Added("x")]),
            ("x", "", &[Line::Removed("x")]),
            (
                "a\nb\nc",
                "a\nB\nc",
                &[
                    Line::Same("a"),
                    Line::Removed("b"),
                    Line::Added("B"),
                    Line::Same("c"),
                ],
            ),
            (
                "a\nc",
                "a\nb\nc",
                &[Line::Same("a"), Line::Added("b"), Line::Same("c")],
            ),
        ];
        for (old, new, want) in cases {
            assert_eq!(diff_lines(old, new), want.to_vec(), "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn unified_hunks_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10";
        let new = "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11";
        let text = unified("revision 1", "revision 2", &diff_lines(old, new), 1);
        assert_eq!(
            text,
            "--- revision 1\n+++ revision 2\n@@ -2,3 +2,3 @@\n 2\n-3\n+three\n 4\n@@ -10,1 +10,2 @@\n 10\n+11\n"
        );
    }
}
