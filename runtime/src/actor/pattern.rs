//! Subscription patterns: compiled as they are matched, and refused when
//! librdkafka would read them differently.

use crate::error::Result;

/// Compiles a subscription pattern the way it is matched: from the start
/// of the topic name. The error's reason is one line (the regex parser's
/// own message draws the pattern over several).
pub(crate) fn pattern_regex(pattern: &str) -> Result<regex::Regex> {
    let compiled = regex::Regex::new(&format!("^(?:{pattern})")).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("not a regular expression");
        crate::Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: reason.trim_start_matches("error: ").to_owned(),
        }
    })?;
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| crate::Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: e.kind().to_string(),
        })?;
    portable(&ast).map_err(|reason| crate::Error::InvalidPattern {
        pattern: pattern.to_owned(),
        reason,
    })?;
    Ok(compiled)
}

/// Whether a pattern means the same to librdkafka, which subscribes with
/// it (POSIX extended regular expressions), as to the `regex` crate, which
/// routes each record by it. A topic only one of them matches would be
/// read and not routed, or never read. So only what both read alike is
/// accepted: literals and escaped metacharacters, `.`, `^`, `$`, bracket
/// classes, greedy repetitions, plain groups and alternation.
fn portable(ast: &regex_syntax::ast::Ast) -> std::result::Result<(), String> {
    use regex_syntax::ast::{AssertionKind, Ast, ClassSet, ClassSetItem, GroupKind, LiteralKind};
    const CLASS: &str = "a class like `\\d`, `\\w` or `\\p{..}` means something else, or \
                         nothing, to librdkafka: write it as a bracket class like `[0-9]`";
    fn item(it: &ClassSetItem) -> std::result::Result<(), String> {
        match it {
            ClassSetItem::Empty(_) | ClassSetItem::Range(_) | ClassSetItem::Ascii(_) => Ok(()),
            ClassSetItem::Literal(l) => literal(l),
            ClassSetItem::Bracketed(b) => set(&b.kind),
            ClassSetItem::Union(u) => u.items.iter().try_for_each(item),
            ClassSetItem::Perl(_) | ClassSetItem::Unicode(_) => Err(CLASS.into()),
        }
    }
    fn set(kind: &ClassSet) -> std::result::Result<(), String> {
        match kind {
            ClassSet::Item(i) => item(i),
            ClassSet::BinaryOp(_) => Err("class set operations (`&&`, `--`, `~~`) are not \
                 supported by librdkafka"
                .into()),
        }
    }
    fn literal(l: &regex_syntax::ast::Literal) -> std::result::Result<(), String> {
        match l.kind {
            LiteralKind::Verbatim | LiteralKind::Meta => Ok(()),
            _ => Err(format!(
                "the escape before `{}` is not read alike by librdkafka: write the character \
                 itself",
                l.c
            )),
        }
    }
    match ast {
        Ast::Empty(_) | Ast::Dot(_) => Ok(()),
        Ast::Literal(l) => literal(l),
        Ast::Assertion(a) => match a.kind {
            AssertionKind::StartLine | AssertionKind::EndLine => Ok(()),
            _ => Err("only `^` and `$` anchor a pattern librdkafka reads alike".into()),
        },
        Ast::ClassPerl(_) | Ast::ClassUnicode(_) => Err(CLASS.into()),
        Ast::ClassBracketed(b) => set(&b.kind),
        Ast::Repetition(r) if !r.greedy => {
            Err("lazy repetitions (`*?`, `+?`) are not supported by librdkafka".into())
        }
        Ast::Repetition(r) => portable(&r.ast),
        Ast::Group(g) => match g.kind {
            GroupKind::CaptureIndex(_) => portable(&g.ast),
            _ => Err(
                "only plain groups `( )` are read alike by librdkafka (no `(?:`, \
                 names or flags)"
                    .into(),
            ),
        },
        Ast::Flags(_) => Err("flags like `(?i)` are not supported by librdkafka".into()),
        Ast::Alternation(a) => a.asts.iter().try_for_each(portable),
        Ast::Concat(c) => c.asts.iter().try_for_each(portable),
    }
}
