//! Field errors: what validation returns, rendered the way kube-apiserver renders them.
//!
//! A 422 `Status` carries one cause per error (`reason`, `message`, `field`) and an
//! overall message `Kind.group "name" is invalid: <aggregate>`; kubectl prints that
//! message verbatim, so the rendering here decides what users read.

use std::fmt;

/// The kinds of field error Kubernetes distinguishes (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl ErrorType {
    /// The `reason` of a `StatusCause`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human words for the type, as they open a cause message.
    pub fn words(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }

    /// Types whose message never shows the offending value.
    fn omits_value(self) -> bool {
        matches!(
            self,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal
        )
    }
}

/// One validation failure at one field path (`spec.template.spec.containers[0].image`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    /// The offending value, already rendered (strings quoted, numbers bare); `None` omits it.
    pub value: Option<String>,
    pub detail: String,
    /// For `NotSupported`: the values that would have been accepted.
    pub supported: Vec<String>,
}

/// Renders a string value the way Go's `%q` does for the ASCII text values carry.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl FieldError {
    fn new(
        kind: ErrorType,
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
            supported: Vec::new(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    /// An invalid string value (rendered quoted).
    pub fn invalid(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(quote(value)), detail)
    }

    /// An invalid value given in its rendered form (numbers, booleans, structures).
    pub fn invalid_rendered(
        field: impl Into<String>,
        rendered: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::Invalid, field, Some(rendered.into()), detail)
    }

    /// An invalid value that is not shown (Kubernetes' `omitValue`).
    pub fn invalid_omitted(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, None, detail)
    }

    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let mut e = Self::new(ErrorType::NotSupported, field, Some(quote(value)), "");
        e.supported = supported.iter().map(|s| s.to_string()).collect();
        e
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    pub fn duplicate(field: impl Into<String>, value: &str) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(quote(value)), "")
    }

    pub fn not_found(field: impl Into<String>, value: &str) -> Self {
        Self::new(ErrorType::NotFound, field, Some(quote(value)), "")
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            field,
            None,
            format!("may not be more than {max} bytes"),
        )
    }

    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(
            ErrorType::TooMany,
            field,
            Some(actual.to_string()),
            format!("must have at most {max} items"),
        )
    }

    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, field, None, detail)
    }

    /// The message of the `StatusCause` (everything after `field: `).
    pub fn cause_message(&self) -> String {
        let mut s = self.kind.words().to_string();
        if !self.kind.omits_value()
            && let Some(v) = &self.value
        {
            s.push_str(": ");
            s.push_str(v);
        }
        let detail = if self.kind == ErrorType::NotSupported && !self.supported.is_empty() {
            let quoted: Vec<String> = self.supported.iter().map(|v| quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        } else {
            self.detail.clone()
        };
        if !detail.is_empty() {
            s.push_str(": ");
            s.push_str(&detail);
        }
        s
    }

    /// `field: message`, as one line of an aggregate.
    pub fn message(&self) -> String {
        if self.field.is_empty() {
            self.cause_message()
        } else {
            format!("{}: {}", self.field, self.cause_message())
        }
    }

    /// The same error at a different path prefix (`spec` + `.template` ...).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Joins errors as Kubernetes' aggregate does: one message alone, several in
/// brackets separated by `, `, duplicates dropped.
pub fn aggregate_message(errs: &[FieldError]) -> String {
    let mut seen = Vec::new();
    for e in errs {
        let m = e.message();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_kube_apiserver() {
        assert_eq!(
            FieldError::required("spec.selector", "").message(),
            "spec.selector: Required value"
        );
        assert_eq!(
            FieldError::invalid(
                "spec.template.metadata.labels",
                "map",
                "`selector` does not match template `labels`"
            )
            .message(),
            "spec.template.metadata.labels: Invalid value: \"map\": `selector` does not match template `labels`"
        );
        assert_eq!(
            FieldError::not_supported("spec.template.spec.restartPolicy", "Never", &["Always"])
                .message(),
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        );
        assert_eq!(
            FieldError::forbidden("spec.selector", "field is immutable").message(),
            "spec.selector: Forbidden: field is immutable"
        );
        assert_eq!(
            FieldError::invalid_rendered(
                "spec.revisionHistoryLimit",
                "-1",
                "must be greater than or equal to 0"
            )
            .message(),
            "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn aggregates_one_plain_many_bracketed_and_deduplicated() {
        let a = FieldError::required("a", "");
        let b = FieldError::required("b", "");
        assert_eq!(
            aggregate_message(std::slice::from_ref(&a)),
            "a: Required value"
        );
        assert_eq!(
            aggregate_message(&[a.clone(), b, a]),
            "[a: Required value, b: Required value]"
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
