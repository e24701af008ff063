//! Label selectors and field selectors, as Kubernetes parses, matches and prints them.
//!
//! * [`Selector`]: the label-selector grammar of `?labelSelector=` and `kubectl -l`
//!   (`app=web,tier notin (cache),!canary,gen>3`), plus `metav1.LabelSelector` objects from
//!   specs ([`Selector::from_label_selector`]). Parse errors carry the apiserver's wording
//!   (`unable to parse requirement: ...`) because they are returned verbatim in 400s.
//! * [`FieldSelector`]: `?fieldSelector=` (`spec.nodeName=n1,status.phase!=Failed`), with
//!   `\,`, `\=` and `\\` escapes in values. Which fields a resource supports is the
//!   caller's business ([`FieldSelector::fields`] lists them).
//! * [`format_label_selector`] and [`format_labels`]: the SELECTOR / NODE SELECTOR table
//!   cells (`metav1.FormatLabelSelector`, `labels.FormatLabels`).
//!
//! The public validators [`is_qualified_name`] and [`is_valid_label_value`] return the
//! same messages as `k8s.io/apimachinery/pkg/util/validation`, so label validation
//! elsewhere can share them.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::field::quote;

/// A selector that failed to parse or to convert; the text is what Kubernetes would say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError(pub String);
impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SelectorError {}

// ---------------------------------------------------------------------------------------
// Name and value validation (k8s.io/apimachinery/pkg/util/validation wording)
// ---------------------------------------------------------------------------------------

const QUALIFIED_NAME_MAX_LEN: usize = 63;
const LABEL_VALUE_MAX_LEN: usize = 63;
const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
     and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of \
     alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
     character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower \
     case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
     character";

/// `validation.RegexError`: the message, examples, and the pattern. The doubled space
/// before each "or" is Kubernetes' own and is kept on purpose.
fn regex_error(msg: &str, pattern: &str, examples: &[&str]) -> String {
    let mut out = String::from(msg);
    if examples.is_empty() {
        out.push_str(" (regex used for validation is '");
    } else {
        out.push_str(" (e.g. ");
        for (i, example) in examples.iter().enumerate() {
            if i > 0 {
                out.push_str(" or ");
            }
            out.push('\'');
            out.push_str(example);
            out.push_str("', ");
        }
        out.push_str("regex used for validation is '");
    }
    out.push_str(pattern);
    out.push_str("')");
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn matches_qualified_name_body(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`, anchored.
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                edge(first) && edge(last) && b.iter().all(|c| edge(c) || *c == b'-')
            }
            _ => false,
        }
    })
}

/// `validation.IsDNS1123Subdomain`: the problems with `value`, empty when it is valid.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsQualifiedName` (label keys, annotation keys): an optional DNS-subdomain
/// prefix and `/`, then a name of at most 63 characters. Empty when valid.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. \
                 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LEN {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LEN)
        ));
    }
    if !matches_qualified_name_body(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue`: empty, or up to 63 characters of the qualified-name
/// alphabet starting and ending alphanumeric. Empty when valid.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LEN {
        errs.push(max_len_error(LABEL_VALUE_MAX_LEN));
    }
    if !value.is_empty() && !matches_qualified_name_body(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Go's `%#v` of a `[]string`, as `field.Invalid` prints a bad value list.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let inner: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

/// `utilerrors.NewAggregate(...).Error()`: duplicates dropped, one message bare, several
/// bracketed and comma-separated.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::new();
    for e in errs {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

// ---------------------------------------------------------------------------------------
// Requirements
// ---------------------------------------------------------------------------------------

/// A label-selector operator (`selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `k in (a,b)` / `In`: the label exists and has one of the values.
    In,
    /// `k notin (a,b)` / `NotIn`: the label is absent or has none of the values.
    NotIn,
    /// `k=v`.
    Equals,
    /// `k==v`: same meaning as `=`, kept apart because it prints back as `==`.
    DoubleEquals,
    /// `k!=v`: absent or different.
    NotEquals,
    /// `k` / `Exists`.
    Exists,
    /// `!k` / `DoesNotExist`.
    DoesNotExist,
    /// `k>n` / `Gt`: the label parses as an integer greater than n.
    GreaterThan,
    /// `k<n` / `Lt`.
    LessThan,
}

/// One clause of a label selector. Built only through validation, so a `Requirement`
/// always has the value count its operator needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key (qualified name), the value count for
    /// the operator, integer values for Gt/Lt, and every value as a label value. All
    /// problems are reported together, worded as Kubernetes does.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = is_qualified_name(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                quote(key),
                key_errs.join("; ")
            ));
        }
        let invalid_values = |detail: &str| {
            format!(
                "values: Invalid value: {}: {detail}",
                go_string_slice(&values)
            )
        };
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(invalid_values(
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(invalid_values(
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(invalid_values(
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid_values(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the \
                             value must be an integer",
                            quote(v)
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = is_valid_label_value(v);
            if !value_errs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    quote(v),
                    value_errs.join("; ")
                ));
            }
        }
        match aggregate(errs) {
            Some(msg) => Err(SelectorError(msg)),
            None => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values in the order given (the parser hands them over sorted and unique).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this clause. `notin`/`!=` also match when the label is
    /// absent; `>`/`<` fail when either side is not an integer.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                labels.get(&self.key).is_some_and(|v| has(v))
            }
            Operator::NotIn | Operator::NotEquals => labels.get(&self.key).is_none_or(|v| !has(v)),
            Operator::Exists => labels.contains_key(&self.key),
            Operator::DoesNotExist => !labels.contains_key(&self.key),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = labels.get(&self.key).map(|v| v.parse::<i64>()) else {
                    return false;
                };
                let [bound] = self.values.as_slice() else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Label selector
// ---------------------------------------------------------------------------------------

/// A label selector: the AND of its requirements, kept sorted by key.
///
/// `Selector::default()` selects everything. [`Selector::nothing`] (what a null
/// `LabelSelector` means) selects nothing and prints as the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// `labels.Nothing()`: matches no label set, whatever the requirements say.
    nothing: bool,
}

impl Selector {
    /// Matches every label set (`labels.Everything()`).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Matches no label set (`labels.Nothing()`).
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// A selector from requirements (sorted by key, stable for equal keys).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// `labels.SelectorFromSet`: `k=v` for every entry, not validated (as in Kubernetes;
    /// used for `nodeSelector` and Service selectors). Empty selects everything.
    pub fn from_set(labels: &BTreeMap<String, String>) -> Self {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        Selector::from_requirements(requirements)
    }

    /// `labels.Parse`: the string grammar of `?labelSelector=`. The empty (or all-blank)
    /// string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
        };
        let requirements = parser.parse().map_err(SelectorError)?;
        Ok(Selector::from_requirements(requirements))
    }

    /// `metav1.LabelSelectorAsSelector` for a present selector: matchLabels as `k=v`,
    /// matchExpressions with `In`, `NotIn`, `Exists`, `DoesNotExist`. A selector with
    /// neither selects everything; deciding whether that is acceptable is the caller's job.
    pub fn from_label_selector(s: &LabelSelector) -> Result<Self, SelectorError> {
        let labels = s.match_labels.as_ref();
        let expressions = s.match_expressions.as_deref().unwrap_or_default();
        if labels.is_none_or(BTreeMap::is_empty) && expressions.is_empty() {
            return Ok(Selector::everything());
        }
        let mut requirements = Vec::new();
        for (k, v) in labels.into_iter().flatten() {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for expr in expressions {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError(format!(
                        "{} is not a valid label selector operator",
                        quote(other)
                    )));
                }
            };
            let values = expr.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(&expr.key, operator, values)?);
        }
        Ok(Selector::from_requirements(requirements))
    }

    /// Like [`Selector::from_label_selector`], with Kubernetes' meaning of an absent
    /// selector: `None` selects nothing.
    pub fn from_optional_label_selector(s: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        match s {
            None => Ok(Selector::nothing()),
            Some(s) => Selector::from_label_selector(s),
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector does not restrict anything (no requirements, not "nothing").
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True only for [`Selector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// `RequiresExactMatch`: the single value the first requirement on `key` demands
    /// (`=`, `==`, or `in` with one value), if any. Useful for index lookups.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

/// Kubernetes' canonical form: requirements by key, joined with `,`; set values sorted.
/// Both "everything" and "nothing" print as the empty string.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing {
            return Ok(());
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// ---- lexer -----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// A run of special characters that forms no operator (unreachable with today's
    /// operator set, kept so the lexer is total).
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the whole input into tokens, ending with `EndOfString`. As in Kubernetes a NUL
/// byte ends the input; identifiers are any run of non-blank, non-special bytes.
fn lex(input: &str) -> Vec<(Token, String)> {
    let bytes = input.as_bytes();
    // Byte 0 is the lexer's end-of-input marker, both past the end and for a literal NUL.
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut pos = 0;
    let mut tokens = Vec::new();
    loop {
        while is_blank(at(pos)) {
            pos += 1;
        }
        let c = at(pos);
        if c == 0 {
            tokens.push((Token::EndOfString, String::new()));
            return tokens;
        }
        let start = pos;
        if is_special(c) {
            // Longest run of special characters that still spells an operator.
            let mut best: Option<(Token, usize)> = None;
            while is_special(at(pos)) {
                pos += 1;
                match literal_token(&bytes[start..pos]) {
                    Some(tok) => best = Some((tok, pos)),
                    None if best.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            match best {
                Some((tok, end)) => {
                    pos = end;
                    tokens.push((tok, String::from_utf8_lossy(&bytes[start..end]).into()));
                }
                None => tokens.push((
                    Token::Error,
                    format!(
                        "error expected: keyword found '{}'",
                        String::from_utf8_lossy(&bytes[start..pos])
                    ),
                )),
            }
        } else {
            while at(pos) != 0 && !is_special(at(pos)) && !is_blank(at(pos)) {
                pos += 1;
            }
            let word = &bytes[start..pos];
            let tok = literal_token(word).unwrap_or(Token::Identifier);
            tokens.push((tok, String::from_utf8_lossy(word).into()));
        }
    }
}

// ---- parser ----------------------------------------------------------------------------

/// Where the parser is: after a key an `in`/`notin` is an operator, elsewhere it is just
/// a word (`x in (in)`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    tokens: &'a [(Token, String)],
    pos: usize,
}

impl Parser<'_> {
    fn token_at(&self, pos: usize, ctx: Context) -> (Token, &str) {
        // The token list always ends with EndOfString; never read past it.
        let (tok, lit) = match self.tokens.get(pos).or(self.tokens.last()) {
            Some((t, l)) => (*t, l.as_str()),
            None => (Token::EndOfString, ""),
        };
        match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, &str) {
        self.token_at(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let (tok, lit) = self.token_at(self.pos, ctx);
        let lit = lit.to_string();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        (tok, lit)
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{l}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(&key, op, Vec::new()).map_err(|e| e.0);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, operator, values).map_err(|e| e.0)
    }

    /// Reads `[!]key`; returns the unary operator when the requirement ends right there
    /// (`key` alone means Exists; `!key` is DoesNotExist whatever follows).
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let key_errs = is_qualified_name(&lit);
        if !key_errs.is_empty() {
            // Kubernetes validates the key here without a field path, hence "<nil>".
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                quote(&lit),
                key_errs.join("; ")
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `( v1, v2 )`: sorted and de-duplicated; empty entries (`(,a)`, `()`) mean "".
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        let lit = lit.to_string();
        let mut set = match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (close, _) = self.consume(Context::Values);
                if close != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                set
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                vec![String::new()]
            }
            _ => return Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        };
        set.sort();
        set.dedup();
        Ok(set)
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.push(lit);
                    let (next, next_lit) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{next_lit}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.push(String::new()); // "(,"
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.push(String::new()); // ",)"
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        set.push(String::new()); // ",,"
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>`, `<`; nothing before `,` or the end
    /// means the empty value.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (next, _) = self.lookahead(Context::Values);
        if next == Token::EndOfString || next == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Field selector
// ---------------------------------------------------------------------------------------

/// The comparison of one field-selector term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

/// One `field=value` / `field!=value` term, value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    fn matches(&self, actual: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A field selector: the AND of its terms. The default selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// `fields.ParseSelector`. Terms are split on unescaped commas and sorted; within a
    /// term the first `!=`, `==` or `=` splits field from value (so the field cannot
    /// contain them); values may escape `\`, `,` and `=` with a backslash and must escape
    /// the latter two. Empty terms are skipped. Field names are not checked here.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_field_terms(s);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_field_term(part) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_field_value(raw).map_err(SelectorError)?;
            // Kubernetes turns a term with neither field nor value into "everything".
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Selects everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// A single `field=value` term (`fields.OneTermEqualSelector`).
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.to_string(),
                operator: FieldOperator::Equals,
                value: value.to_string(),
            }],
        }
    }

    /// Whether an object passes, `get` giving a field's value; a field `get` does not know
    /// (returns `None` for) compares as the empty string, as in Kubernetes' `fields.Set`.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = get(&r.field).unwrap_or_default();
            r.matches(&actual)
        })
    }

    /// The field names used, in term order (duplicates kept).
    pub fn fields(&self) -> Vec<&str> {
        self.requirements.iter().map(|r| r.field.as_str()).collect()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value a `field=value` term pins `field` to, if any (for index lookups such as
    /// `spec.nodeName`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

/// Kubernetes' string form: the terms joined with `,`, values escaped.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Splits on commas not preceded by an escaping backslash; the pieces keep their escapes.
fn split_field_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Finds the leftmost position where `!=`, `==` or `=` starts (tried in that order).
fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_field_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // Go prints the offending rune with %v, i.e. as its code point number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            other => out.push(other),
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// `fields.EscapeValue`: the inverse of the unescaping the parser does.
pub fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Table cells
// ---------------------------------------------------------------------------------------

/// `metav1.FormatLabelSelector`: the canonical selector string, `<none>` when it selects
/// everything, `<error>` when the selector is invalid.
pub fn format_label_selector(s: &LabelSelector) -> String {
    match Selector::from_label_selector(s) {
        Err(_) => "<error>".to_string(),
        Ok(sel) => {
            let text = sel.to_string();
            if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            }
        }
    }
}

/// `labels.FormatLabels`: `k=v` pairs joined with `,`, `<none>` when empty. Kubernetes
/// sorts the joined `k=v` strings (not the keys), so `a-b=1` comes before `a=1`.
pub fn format_labels(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "<none>".to_string();
    }
    let mut pairs: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort_unstable();
    pairs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> Selector {
        match Selector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn parse_err(s: &str) -> String {
        match Selector::parse(s) {
            Ok(sel) => panic!("{s:?} should not parse, got {sel:?}"),
            Err(e) => e.0,
        }
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| v.to_string()).collect())
            },
        }
    }

    const NAME_PART_REGEX: &str = "name part must consist of alphanumeric characters, '-', \
        '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
        'my.name',  or '123-abc', regex used for validation is \
        '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_REGEX: &str = "a valid label must be an empty string or consist of \
        alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
        character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
        '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn parse_and_print_canonical_form() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a!=b", "a!=b"),
            ("a", "a"),
            ("!a", "!a"),
            ("a>1", "a>1"),
            ("a<10", "a<10"),
            ("x in (b,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("x in (a,a,b)", "x in (a,b)"),
            ("z=1,a=2,m", "a=2,m,z=1"),
            (" a = b , c notin ( d , e ) ", "a=b,c notin (d,e)"),
            ("a=", "a="),
            ("a=,b", "a=,b"),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,)", "x in (,a)"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("in in (in,notin)", "in in (in,notin)"),
            ("example.com/app=web", "example.com/app=web"),
            ("a\tin\t(b)", "a in (b)"),
            ("a=b\0garbage!!", "a=b"),
        ];
        for (input, want) in cases {
            assert_eq!(sel(input).to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn matching() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("gen", "5")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("missing=", false),
            ("app in (db,web)", true),
            ("app in (db)", false),
            ("missing in (x)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("gen>4", true),
            ("gen>5", false),
            ("gen<6", true),
            ("gen<5", false),
            ("app>1", false),
            ("missing<1", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
        ];
        for (input, want) in cases {
            assert_eq!(sel(input).matches(&l), want, "selector {input:?}");
        }
        assert!(Selector::default().matches(&BTreeMap::new()));
        assert!(!Selector::nothing().matches(&BTreeMap::new()));
    }

    #[test]
    fn grammar_errors() {
        let cases = [
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a=b,", "found '', expected: identifier after ','"),
            ("a=b,=c", "found '=', expected: identifier after ','"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a in (b,=)",
                "unable to parse requirement: found '=', expected: ',', or identifier",
            ),
            ("a==", "a== stays valid"),
            (
                "a=(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ];
        for (input, want) in cases {
            if want.ends_with("stays valid") {
                assert!(Selector::parse(input).is_ok(), "{input:?}");
                continue;
            }
            assert_eq!(parse_err(input), want, "input {input:?}");
        }
    }

    #[test]
    fn validation_errors() {
        assert_eq!(
            parse_err("a_=b"),
            format!("unable to parse requirement: <nil>: Invalid value: \"a_\": {NAME_PART_REGEX}")
        );
        assert_eq!(
            parse_err("a=b_"),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"b_\": \
                 {LABEL_VALUE_REGEX}"
            )
        );
        assert_eq!(
            parse_err("a>x"),
            format!(
                "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' \
                 operators, the value must be an integer"
            )
        );
        assert_eq!(
            parse_err("a>"),
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' \
             operators, the value must be an integer"
        );
        let long = "v".repeat(64);
        assert_eq!(
            parse_err(&format!("a={long}")),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be \
                 no more than 63 characters"
            )
        );
        assert_eq!(
            parse_err("/a"),
            "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be \
             non-empty"
        );
        assert!(parse_err("Example.com/a").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(parse_err("a/b/c").contains("a qualified name must consist of"));
        // A too-long key still fits the pattern: one problem, no brackets.
        assert_eq!(
            parse_err(&format!("{}=b", "k".repeat(64)))
                .matches("name part")
                .count(),
            1
        );
        assert_eq!(
            is_qualified_name("x/"),
            vec![
                "name part must be non-empty".to_string(),
                NAME_PART_REGEX.to_string()
            ]
        );
    }

    #[test]
    fn validators() {
        assert!(is_qualified_name("app").is_empty());
        assert!(is_qualified_name("kubernetes.io/hostname").is_empty());
        assert!(is_qualified_name("A.b-C_d9").is_empty());
        assert!(!is_qualified_name("-a").is_empty());
        assert!(!is_qualified_name("").is_empty());
        assert!(!is_qualified_name(&"a".repeat(64)).is_empty());
        assert!(is_qualified_name(&"a".repeat(63)).is_empty());
        assert!(!is_qualified_name("ex_ample.com/a").is_empty());
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("v1.2_3-x").is_empty());
        assert!(!is_valid_label_value("a b").is_empty());
        assert!(!is_valid_label_value("é").is_empty());
        assert!(is_dns1123_subdomain("a.b-c.d").is_empty());
        assert!(!is_dns1123_subdomain("a..b").is_empty());
        assert!(!is_dns1123_subdomain(&format!("{}.com", "a".repeat(250))).is_empty());
    }

    #[test]
    fn label_selector_objects() {
        let ls = LabelSelector {
            match_labels: Some(labels(&[("name", "fluentd-elasticsearch")])),
            match_expressions: None,
        };
        let s = Selector::from_label_selector(&ls).expect("valid");
        assert_eq!(s.to_string(), "name=fluentd-elasticsearch");
        assert!(s.matches(&labels(&[("name", "fluentd-elasticsearch"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("name", "other")])));
        assert_eq!(s, sel("name=fluentd-elasticsearch"));

        let ls = LabelSelector {
            match_labels: Some(labels(&[("z", "1"), ("b", "2")])),
            match_expressions: Some(vec![
                expr("tier", "NotIn", &["cache"]),
                expr("env", "In", &["prod", "dev"]),
                expr("canary", "DoesNotExist", &[]),
                expr("app", "Exists", &[]),
            ]),
        };
        let s = Selector::from_label_selector(&ls).expect("valid");
        assert_eq!(
            s.to_string(),
            "app,b=2,!canary,env in (dev,prod),tier notin (cache),z=1"
        );
        assert!(s.matches(&labels(&[
            ("app", "x"),
            ("b", "2"),
            ("z", "1"),
            ("env", "dev")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "x"),
            ("b", "2"),
            ("z", "1"),
            ("env", "qa")
        ])));
    }

    #[test]
    fn label_selector_emptiness() {
        let empty = LabelSelector::default();
        let s = Selector::from_label_selector(&empty).expect("valid");
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[("a", "b")])));
        let also_empty = LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        };
        assert!(
            Selector::from_label_selector(&also_empty)
                .expect("valid")
                .is_empty()
        );

        let none = Selector::from_optional_label_selector(None).expect("valid");
        assert!(!none.is_empty());
        assert!(none.matches_nothing());
        assert!(!none.matches(&BTreeMap::new()));
        assert_eq!(none.to_string(), "");
        let some = Selector::from_optional_label_selector(Some(&empty)).expect("valid");
        assert!(some.is_empty());
    }

    #[test]
    fn label_selector_errors() {
        let err = |e: LabelSelectorRequirement| {
            let ls = LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![e]),
            };
            match Selector::from_label_selector(&ls) {
                Ok(s) => panic!("should fail, got {s}"),
                Err(e) => e.0,
            }
        };
        assert_eq!(
            err(expr("a", "In", &[])),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set \
             can't be empty"
        );
        assert_eq!(
            err(expr("a", "NotIn", &[])),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set \
             can't be empty"
        );
        assert_eq!(
            err(expr("a", "Exists", &["x", "y"])),
            "values: Invalid value: []string{\"x\", \"y\"}: values set must be empty for \
             exists and does not exist"
        );
        assert_eq!(
            err(expr("a", "Equals", &["x"])),
            "\"Equals\" is not a valid label selector operator"
        );
        assert_eq!(
            err(expr("a b", "Exists", &[])),
            format!("key: Invalid value: \"a b\": {}", NAME_PART_REGEX)
        );
        assert_eq!(
            err(expr("a_", "In", &[])),
            format!(
                "[key: Invalid value: \"a_\": {NAME_PART_REGEX}, values: Invalid value: \
                 []string(nil): for 'in', 'notin' operators, values set can't be empty]"
            )
        );
        let bad_label = LabelSelector {
            match_labels: Some(labels(&[("a", "b c")])),
            match_expressions: None,
        };
        assert_eq!(
            Selector::from_label_selector(&bad_label).map_err(|e| e.0),
            Err(format!(
                "values[0][a]: Invalid value: \"b c\": {LABEL_VALUE_REGEX}"
            ))
        );
        assert_eq!(format_label_selector(&bad_label), "<error>");
    }

    #[test]
    fn format_label_selector_cells() {
        assert_eq!(format_label_selector(&LabelSelector::default()), "<none>");
        let ls = LabelSelector {
            match_labels: Some(labels(&[("name", "fluentd-elasticsearch")])),
            match_expressions: None,
        };
        assert_eq!(format_label_selector(&ls), "name=fluentd-elasticsearch");
        let ls = LabelSelector {
            match_labels: Some(labels(&[("app", "x")])),
            match_expressions: Some(vec![
                expr("k", "In", &["b", "a"]),
                expr("j", "NotIn", &["a"]),
                expr("e", "Exists", &[]),
                expr("d", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            format_label_selector(&ls),
            "app=x,!d,e,j notin (a),k in (a,b)"
        );
    }

    #[test]
    fn format_labels_cells() {
        assert_eq!(format_labels(&BTreeMap::new()), "<none>");
        assert_eq!(format_labels(&labels(&[("b", "2"), ("a", "1")])), "a=1,b=2");
        // Sorted as whole "k=v" strings: '-' sorts before '='.
        assert_eq!(
            format_labels(&labels(&[("a", "1"), ("a-b", "1")])),
            "a-b=1,a=1"
        );
        assert_eq!(
            format_labels(&labels(&[("kubernetes.io/os", "linux")])),
            "kubernetes.io/os=linux"
        );
    }

    #[test]
    fn selector_helpers() {
        let s = sel("a=1,b in (x),c in (x,y),d!=z");
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("x"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("e"), None);
        assert_eq!(s.requirements().len(), 4);
        assert_eq!(s.requirements()[2].operator(), Operator::In);
        assert_eq!(s.requirements()[2].values(), ["x", "y"]);
        let set = Selector::from_set(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(set.to_string(), "a=1,b=2");
        assert!(Selector::from_set(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn field_selector_parse_and_match() {
        let fs =
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed")
                .expect("valid");
        assert_eq!(
            fs.fields(),
            vec!["spec.nodeName", "status.phase", "status.phase"]
        );
        let pod = |node: &str, phase: &str| {
            let (node, phase) = (node.to_string(), phase.to_string());
            move |f: &str| match f {
                "spec.nodeName" => Some(node.clone()),
                "status.phase" => Some(phase.clone()),
                _ => None,
            }
        };
        assert!(fs.matches(pod("n1", "Running")));
        assert!(!fs.matches(pod("n1", "Failed")));
        assert!(!fs.matches(pod("n2", "Running")));
        assert_eq!(fs.requires_exact_match("spec.nodeName"), Some("n1"));
        assert_eq!(fs.requires_exact_match("status.phase"), None);

        // Missing fields compare as "".
        let ns = FieldSelector::parse("involvedObject.namespace=").expect("valid");
        assert!(ns.matches(|_| None));
        assert!(!ns.matches(|_| Some("x".to_string())));
        let ne = FieldSelector::parse("metadata.name!=").expect("valid");
        assert!(!ne.matches(|_| None));

        let eq2 = FieldSelector::parse("metadata.name==x").expect("valid");
        assert_eq!(eq2.requirements()[0].operator, FieldOperator::Equals);
        assert_eq!(eq2.to_string(), "metadata.name=x");

        let all = FieldSelector::parse("").expect("valid");
        assert!(all.is_empty() && all.matches(|_| None));
        assert!(FieldSelector::parse(",,").expect("valid").is_empty());
        assert!(FieldSelector::parse("=").expect("valid").is_empty());
        assert_eq!(
            FieldSelector::parse("=x").expect("valid").fields(),
            vec![""]
        );
    }

    #[test]
    fn field_selector_escapes() {
        let fs = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,spec.nodeName=n").expect("ok");
        assert_eq!(fs.requirements()[0].value, r"a,b=c\d");
        assert_eq!(fs.requirements()[1].value, "n");
        assert_eq!(fs.to_string(), r"metadata.name=a\,b\=c\\d,spec.nodeName=n");
        assert_eq!(escape_field_value(r"a,b=c\d"), r"a\,b\=c\\d");
        // Terms are sorted by their raw text.
        let fs = FieldSelector::parse("b=1,a=2").expect("ok");
        assert_eq!(fs.fields(), vec!["a", "b"]);
    }

    #[test]
    fn field_selector_errors() {
        let err = |s: &str| match FieldSelector::parse(s) {
            Ok(f) => panic!("{s:?} should fail, got {f:?}"),
            Err(e) => e.0,
        };
        assert_eq!(
            err("metadata.name"),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            err("a=b,c"),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
        assert_eq!(
            err("a=b=c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err("a!==b"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err(r"a=b\x"),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        // `a=!x` splits at the first `=`: the value is "!x".
        let fs = FieldSelector::parse("a=!x").expect("ok");
        assert_eq!(fs.requirements()[0].value, "!x");
    }

    fn label_key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9]{0,8}",
            "[a-z]{1,5}\\.[a-z]{2,3}/[A-Za-z][A-Za-z0-9_.-]{0,6}[a-z0-9]",
        ]
    }

    fn label_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "",
            "[A-Za-z0-9]",
            "[A-Za-z0-9][A-Za-z0-9_.-]{0,8}[A-Za-z0-9]"
        ]
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        (
            label_key(),
            0..9usize,
            prop::collection::vec(label_value(), 1..4),
            -50i64..50,
        )
            .prop_map(|(key, op, mut values, n)| {
                let (operator, values) = match op {
                    0 => (Operator::In, {
                        values.sort();
                        values.dedup();
                        values
                    }),
                    1 => (Operator::NotIn, {
                        values.sort();
                        values.dedup();
                        values
                    }),
                    2 => (Operator::Equals, values[..1].to_vec()),
                    3 => (Operator::DoubleEquals, values[..1].to_vec()),
                    4 => (Operator::NotEquals, values[..1].to_vec()),
                    5 => (Operator::Exists, vec![]),
                    6 => (Operator::DoesNotExist, vec![]),
                    7 => (Operator::GreaterThan, vec![n.unsigned_abs().to_string()]),
                    _ => (Operator::LessThan, vec![n.unsigned_abs().to_string()]),
                };
                Requirement {
                    key,
                    operator,
                    values,
                }
            })
    }

    proptest! {
        /// Printing a selector and parsing it back gives the same selector.
        #[test]
        fn display_parse_round_trip(reqs in prop::collection::vec(requirement(), 0..5)) {
            let s = Selector::from_requirements(reqs);
            let printed = s.to_string();
            let back = Selector::parse(&printed);
            prop_assert_eq!(back.as_ref().ok(), Some(&s), "printed {:?} -> {:?}", printed, back);
        }

        /// Matching does not depend on how the selector was written.
        #[test]
        fn matching_is_stable_under_reprinting(
            reqs in prop::collection::vec(requirement(), 0..4),
            ls in prop::collection::btree_map(label_key(), label_value(), 0..4),
        ) {
            let s = Selector::from_requirements(reqs);
            let back = Selector::parse(&s.to_string()).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(s.matches(&ls), back.matches(&ls));
        }

        /// The parser never panics, whatever the input.
        #[test]
        fn parse_total(input in "[a-z=!(), <>in0-9_./-]{0,24}") {
            let _ = Selector::parse(&input);
            let _ = FieldSelector::parse(&input);
        }

        /// Escaped field values survive a print/parse round trip.
        #[test]
        fn field_value_round_trip(value in "[a-z,=\\\\ ]{0,12}") {
            let fs = FieldSelector::one_term_equal("metadata.name", &value);
            let back = FieldSelector::parse(&fs.to_string()).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(back.requirements()[0].value.as_str(), value.as_str());
        }
    }
}
