//! RocketMQ's SQL92 property filter: the expression language of `expressionType=SQL92`
//! subscriptions (`MessageSelector.bySql`), parsed once into an [`Expression`] and evaluated
//! against a message's properties.
//!
//! Grammar (keywords case-insensitive, lowest precedence first):
//! `OR`, `AND`, `=` / `<>` / `IS [NOT] NULL`, `> >= < <=` / `[NOT] BETWEEN x AND y` /
//! `[NOT] IN ('a', ...)` / `[NOT] CONTAINS|STARTSWITH|ENDSWITH 'x'`, unary `+ - NOT`, then
//! literals (`'str'` with `''` for a quote, integers, decimals, `TRUE`, `FALSE`, `NULL`),
//! property names `[A-Za-z_$][A-Za-z0-9_$]*` and parentheses. Comments `-- ...` and
//! `/* ... */` are skipped.
//!
//! Semantics follow the Java filter: property values are strings, compared with a literal
//! by converting the string to the literal's type (an int literal reads the property as a
//! 32-bit int, a larger one as a long, a decimal as a double, a boolean as "true" or not);
//! a missing property makes a comparison unknown; logic is three-valued and only TRUE
//! matches; a conversion that fails means "no match" for that message.
//!
//! Deliberate differences from Java, each a Java bug a user would not want: trailing input
//! after a complete expression is an error (Java silently ignores it, so `a LIKE 'x%'` meant
//! just `a`); decimal zero literals (`0.0`) parse; `TRUE = a` compares instead of failing.

use std::cmp::Ordering;
use std::fmt;

/// A literal or a value computed while evaluating.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `TRUE` / `FALSE`, or a comparison's result.
    Bool(bool),
    /// An integer literal that fits 32 bits (Java `Integer`).
    Int(i32),
    /// A larger integer literal (Java `Long`).
    Long(i64),
    /// A decimal literal (Java `Double`).
    Double(f64),
    /// A string literal or a property value.
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Long(l) => write!(f, "{l}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// Comparison operators other than equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// String tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    /// `CONTAINS`
    Contains,
    /// `STARTSWITH`
    StartsWith,
    /// `ENDSWITH`
    EndsWith,
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    /// A literal; `None` is `NULL`.
    Const(Option<Value>),
    /// A message property.
    Property(String),
    /// A bare property used as a condition (never TRUE: a string is not a boolean).
    BoolCast(Box<Expression>),
    /// `NOT x`
    Not(Box<Expression>),
    /// `-x`
    Negate(Box<Expression>),
    /// `x AND y`
    And(Box<Expression>, Box<Expression>),
    /// `x OR y`
    Or(Box<Expression>, Box<Expression>),
    /// `x = y` (and `IS NULL` as equality with NULL)
    Eq(Box<Expression>, Box<Expression>),
    /// `x > y` and friends
    Cmp(CmpOp, Box<Expression>, Box<Expression>),
    /// `prop [NOT] IN ('a', ...)`
    In {
        /// Property tested.
        property: String,
        /// Accepted values.
        values: Vec<String>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] CONTAINS|STARTSWITH|ENDSWITH 'y'`
    Str {
        /// Which test.
        op: StrOp,
        /// Value tested.
        subject: Box<Expression>,
        /// The literal.
        pattern: String,
        /// `NOT` form.
        negated: bool,
    },
}

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column of the offending input.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SQL92 filter: {} (at column {})",
            self.message, self.column
        )
    }
}

impl std::error::Error for ParseError {}

/// Why evaluation could not decide (the message then does not match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Double(f64),
    Kw(Kw),
    Sym(&'static str),
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
}

fn keyword(word: &str) -> Option<Kw> {
    Some(match word.to_ascii_uppercase().as_str() {
        "NOT" => Kw::Not,
        "AND" => Kw::And,
        "OR" => Kw::Or,
        "BETWEEN" => Kw::Between,
        "IN" => Kw::In,
        "TRUE" => Kw::True,
        "FALSE" => Kw::False,
        "NULL" => Kw::Null,
        "IS" => Kw::Is,
        "CONTAINS" => Kw::Contains,
        "STARTSWITH" => Kw::StartsWith,
        "ENDSWITH" => Kw::EndsWith,
        _ => return None,
    })
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("property {s}"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Double(d) => format!("number {d}"),
        Tok::Kw(k) => format!("{k:?}").to_ascii_uppercase(),
        Tok::Sym(s) => format!("\"{s}\""),
        Tok::End => "end of input".into(),
    }
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, m: String| ParseError {
        column: input[..at.min(input.len())].chars().count() + 1,
        message: m,
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let Some(end) = input[i + 2..].find("*/") else {
                    return Err(err(i, "unterminated comment".into()));
                };
                i += end + 4;
            }
            b'\'' => {
                let start = i;
                i += 1;
                let mut s = String::new();
                loop {
                    match input[i..].find('\'') {
                        None => return Err(err(start, "unterminated string literal".into())),
                        Some(q) => {
                            s.push_str(&input[i..i + q]);
                            i += q + 1;
                            if b.get(i) == Some(&b'\'') {
                                s.push('\'');
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let mut decimal = false;
                if i < b.len() && b[i] == b'.' {
                    decimal = true;
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    let save = i;
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    if i < b.len() && b[i].is_ascii_digit() {
                        decimal = true;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                    } else {
                        i = save;
                    }
                }
                let text = &input[start..i];
                if decimal {
                    let d: f64 = text
                        .parse()
                        .map_err(|_| err(start, format!("invalid number {text}")))?;
                    if d.is_infinite() {
                        return Err(err(start, format!("number {text} is out of range")));
                    }
                    out.push((Tok::Double(d), start));
                } else {
                    if i < b.len() && (b[i] == b'l' || b[i] == b'L') {
                        i += 1;
                    }
                    if text.len() > 1 && text.starts_with('0') {
                        return Err(err(
                            start,
                            format!("invalid number {text} (no leading zeros)"),
                        ));
                    }
                    let n: i64 = text
                        .parse()
                        .map_err(|_| err(start, format!("number {text} is out of range")))?;
                    out.push((Tok::Int(n), start));
                }
                if i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    return Err(err(
                        i,
                        format!("unexpected character {:?} after a number", b[i] as char),
                    ));
                }
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' | b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &input[start..i];
                out.push((
                    keyword(word).map_or_else(|| Tok::Ident(word.to_string()), Tok::Kw),
                    start,
                ));
            }
            _ => {
                let two = input.get(i..i + 2);
                let sym: &'static str = match (two, c) {
                    (Some("<>"), _) => "<>",
                    (Some(">="), _) => ">=",
                    (Some("<="), _) => "<=",
                    (_, b'=') => "=",
                    (_, b'>') => ">",
                    (_, b'<') => "<",
                    (_, b'(') => "(",
                    (_, b')') => ")",
                    (_, b',') => ",",
                    (_, b'+') => "+",
                    (_, b'-') => "-",
                    _ => {
                        let ch = input[i..].chars().next().unwrap_or('?');
                        let hint = if input[i..].starts_with("!=") {
                            " (use <> for not equal)"
                        } else if ch == '"' {
                            " (strings use single quotes)"
                        } else {
                            ""
                        };
                        return Err(err(i, format!("unexpected character {ch:?}{hint}")));
                    }
                };
                out.push((Tok::Sym(sym), i));
                i += sym.len();
            }
        }
    }
    out.push((Tok::End, input.len()));
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    input: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

fn is_boolean(e: &Expression) -> bool {
    match e {
        Expression::Const(Some(Value::Bool(_))) => true,
        Expression::Const(_) | Expression::Property(_) | Expression::Negate(_) => false,
        _ => true,
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].0
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        let at = self.toks[self.pos].1;
        ParseError {
            column: self.input[..at.min(self.input.len())].chars().count() + 1,
            message: message.into(),
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        self.error(format!(
            "expected {wanted}, found {}",
            describe(self.peek())
        ))
    }

    fn eat_kw(&mut self, k: Kw) -> bool {
        if self.peek() == &Tok::Kw(k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(x) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn boolean(&self, e: Expression) -> Result<Expression, ParseError> {
        match e {
            Expression::Property(_) => Ok(Expression::BoolCast(Box::new(e))),
            e if is_boolean(&e) => Ok(e),
            e => Err(self.error(format!(
                "expression will not result in a boolean value: {}",
                render(&e)
            ))),
        }
    }

    fn or(&mut self) -> Result<Expression, ParseError> {
        let mut left = self.and()?;
        while self.eat_kw(Kw::Or) {
            let right = self.and()?;
            left = Expression::Or(
                Box::new(self.boolean(left)?),
                Box::new(self.boolean(right)?),
            );
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expression, ParseError> {
        let mut left = self.equality()?;
        while self.eat_kw(Kw::And) {
            let right = self.equality()?;
            left = Expression::And(
                Box::new(self.boolean(left)?),
                Box::new(self.boolean(right)?),
            );
        }
        Ok(left)
    }

    fn check_equality(&self, l: &Expression, r: &Expression) -> Result<(), ParseError> {
        if matches!(l, Expression::Const(None)) || matches!(r, Expression::Const(None)) {
            return Err(self.error("'NULL' cannot be compared (use IS NULL)"));
        }
        if let (Expression::Const(Some(Value::Bool(_))), Expression::Const(Some(v))) = (l, r)
            && !matches!(v, Value::Bool(_))
        {
            return Err(self.error(format!("cannot compare a boolean with {v}")));
        }
        Ok(())
    }

    fn equality(&mut self) -> Result<Expression, ParseError> {
        let mut left = self.comparison()?;
        loop {
            if self.eat_sym("=") {
                let right = self.comparison()?;
                self.check_equality(&left, &right)?;
                left = Expression::Eq(Box::new(left), Box::new(right));
            } else if self.eat_sym("<>") {
                let right = self.comparison()?;
                self.check_equality(&left, &right)?;
                left = Expression::Not(Box::new(Expression::Eq(Box::new(left), Box::new(right))));
            } else if self.eat_kw(Kw::Is) {
                let negated = self.eat_kw(Kw::Not);
                if !self.eat_kw(Kw::Null) {
                    return Err(self.unexpected("NULL"));
                }
                let is_null = Expression::Eq(Box::new(left), Box::new(Expression::Const(None)));
                left = if negated {
                    Expression::Not(Box::new(is_null))
                } else {
                    is_null
                };
            } else {
                return Ok(left);
            }
        }
    }

    fn numeric_operand(&self, e: &Expression, what: &str) -> Result<(), ParseError> {
        match e {
            Expression::Const(Some(Value::Int(_) | Value::Long(_) | Value::Double(_))) => Ok(()),
            Expression::Const(v) => Err(self.error(format!(
                "{what} needs a number, got {}",
                v.as_ref().map_or("NULL".to_string(), Value::to_string)
            ))),
            e if is_boolean(e) => {
                Err(self.error(format!("{what} cannot compare a condition: {}", render(e))))
            }
            _ => Ok(()),
        }
    }

    fn string_literal(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected(&format!("a string literal after {what}"))),
        }
    }

    fn comparison(&mut self) -> Result<Expression, ParseError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym(">") => Some(CmpOp::Gt),
                Tok::Sym(">=") => Some(CmpOp::Ge),
                Tok::Sym("<") => Some(CmpOp::Lt),
                Tok::Sym("<=") => Some(CmpOp::Le),
                _ => None,
            };
            if let Some(op) = op {
                self.pos += 1;
                let right = self.unary()?;
                self.numeric_operand(&left, "comparison")?;
                self.numeric_operand(&right, "comparison")?;
                left = Expression::Cmp(op, Box::new(left), Box::new(right));
                continue;
            }
            let negated = self.peek() == &Tok::Kw(Kw::Not)
                && matches!(
                    self.peek_at(1),
                    Tok::Kw(Kw::Between | Kw::In | Kw::Contains | Kw::StartsWith | Kw::EndsWith)
                );
            if negated {
                self.pos += 1;
            }
            match self.peek().clone() {
                Tok::Kw(Kw::Between) => {
                    self.pos += 1;
                    let low = self.unary()?;
                    if !self.eat_kw(Kw::And) {
                        return Err(self.unexpected("AND in BETWEEN"));
                    }
                    let high = self.unary()?;
                    self.numeric_operand(&left, "BETWEEN")?;
                    self.numeric_operand(&low, "BETWEEN")?;
                    self.numeric_operand(&high, "BETWEEN")?;
                    if let (Expression::Const(Some(l)), Expression::Const(Some(h))) = (&low, &high)
                        && compare_numbers(l, h) == Some(Ordering::Greater)
                    {
                        return Err(self.error(format!(
                            "illegal BETWEEN: the low value {l} must not be greater than the high value {h}"
                        )));
                    }
                    let x = Box::new(left);
                    left = if negated {
                        Expression::Or(
                            Box::new(Expression::Cmp(CmpOp::Lt, x.clone(), Box::new(low))),
                            Box::new(Expression::Cmp(CmpOp::Gt, x, Box::new(high))),
                        )
                    } else {
                        Expression::And(
                            Box::new(Expression::Cmp(CmpOp::Ge, x.clone(), Box::new(low))),
                            Box::new(Expression::Cmp(CmpOp::Le, x, Box::new(high))),
                        )
                    };
                }
                Tok::Kw(Kw::In) => {
                    self.pos += 1;
                    let Expression::Property(property) = left else {
                        return Err(self.error(format!(
                            "IN needs a property on its left, got {}",
                            render(&left)
                        )));
                    };
                    if !self.eat_sym("(") {
                        return Err(self.unexpected("( after IN"));
                    }
                    let mut values = vec![self.string_literal("IN (")?];
                    while self.eat_sym(",") {
                        values.push(self.string_literal(",")?);
                    }
                    if !self.eat_sym(")") {
                        return Err(self.unexpected(") closing IN"));
                    }
                    left = Expression::In {
                        property,
                        values,
                        negated,
                    };
                }
                Tok::Kw(k @ (Kw::Contains | Kw::StartsWith | Kw::EndsWith)) => {
                    let op = match k {
                        Kw::Contains => StrOp::Contains,
                        Kw::StartsWith => StrOp::StartsWith,
                        _ => StrOp::EndsWith,
                    };
                    self.pos += 1;
                    let pattern = self.string_literal(&format!("{k:?}").to_ascii_uppercase())?;
                    left = Expression::Str {
                        op,
                        subject: Box::new(left),
                        pattern,
                        negated,
                    };
                }
                _ => return Ok(left),
            }
        }
    }

    fn unary(&mut self) -> Result<Expression, ParseError> {
        if self.eat_sym("+") {
            return self.unary();
        }
        if self.eat_sym("-") {
            return Ok(match self.unary()? {
                Expression::Const(Some(Value::Int(i))) => Expression::Const(Some(
                    i.checked_neg().map_or(Value::Long(-(i as i64)), Value::Int),
                )),
                Expression::Const(Some(Value::Long(l))) => {
                    Expression::Const(Some(i32::try_from(-l).map_or(Value::Long(-l), Value::Int)))
                }
                Expression::Const(Some(Value::Double(d))) => {
                    Expression::Const(Some(Value::Double(-d)))
                }
                e => Expression::Negate(Box::new(e)),
            });
        }
        if self.eat_kw(Kw::Not) {
            let e = self.unary()?;
            return Ok(Expression::Not(Box::new(self.boolean(e)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expression, ParseError> {
        let e = match self.peek().clone() {
            Tok::Str(s) => Expression::Const(Some(Value::Str(s))),
            Tok::Int(n) => {
                Expression::Const(Some(i32::try_from(n).map_or(Value::Long(n), Value::Int)))
            }
            Tok::Double(d) => Expression::Const(Some(Value::Double(d))),
            Tok::Kw(Kw::True) => Expression::Const(Some(Value::Bool(true))),
            Tok::Kw(Kw::False) => Expression::Const(Some(Value::Bool(false))),
            Tok::Kw(Kw::Null) => Expression::Const(None),
            Tok::Ident(name) => Expression::Property(name),
            Tok::Sym("(") => {
                self.pos += 1;
                let e = self.or()?;
                if !self.eat_sym(")") {
                    return Err(self.unexpected(")"));
                }
                return Ok(e);
            }
            _ => return Err(self.unexpected("a value, a property or (")),
        };
        self.pos += 1;
        Ok(e)
    }
}

/// Parses a SQL92 filter expression.
pub fn parse(input: &str) -> Result<Expression, ParseError> {
    let toks = lex(input)?;
    let mut p = Parser {
        input,
        toks,
        pos: 0,
    };
    if p.peek() == &Tok::End {
        return Err(p.error("the expression is empty"));
    }
    let e = p.or()?;
    if p.peek() != &Tok::End {
        return Err(p.unexpected("AND, OR or the end of the expression"));
    }
    p.boolean(e)
}

/// Renders an expression back to SQL text (error messages, logs).
pub fn render(e: &Expression) -> String {
    match e {
        Expression::Const(None) => "NULL".into(),
        Expression::Const(Some(v)) => v.to_string(),
        Expression::Property(p) => p.clone(),
        Expression::BoolCast(x) => render(x),
        Expression::Not(x) => format!("(NOT {})", render(x)),
        Expression::Negate(x) => format!("(-{})", render(x)),
        Expression::And(a, b) => format!("({} AND {})", render(a), render(b)),
        Expression::Or(a, b) => format!("({} OR {})", render(a), render(b)),
        Expression::Eq(a, b) if matches!(**b, Expression::Const(None)) => {
            format!("({} IS NULL)", render(a))
        }
        Expression::Eq(a, b) => format!("({} = {})", render(a), render(b)),
        Expression::Cmp(op, a, b) => {
            let op = match op {
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
            };
            format!("({} {op} {})", render(a), render(b))
        }
        Expression::In {
            property,
            values,
            negated,
        } => format!(
            "({property} {}IN ({}))",
            if *negated { "NOT " } else { "" },
            values
                .iter()
                .map(|v| Value::Str(v.clone()).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expression::Str {
            op,
            subject,
            pattern,
            negated,
        } => format!(
            "({} {}{} {})",
            render(subject),
            if *negated { "NOT " } else { "" },
            format!("{op:?}").to_ascii_uppercase(),
            Value::Str(pattern.clone())
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

fn parse_int(s: &str) -> Option<i32> {
    // Java Integer.valueOf: optional sign, digits, no whitespace.
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

fn parse_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

fn parse_double(s: &str) -> Option<f64> {
    // Java Double.valueOf trims and takes a trailing f/d type suffix.
    let t = s.trim();
    let t = t
        .strip_suffix(['f', 'F', 'd', 'D'])
        .filter(|r| {
            r.bytes()
                .last()
                .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        })
        .unwrap_or(t);
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if t
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => t.parse().ok(),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(f64::from(*i)),
        Value::Long(l) => Some(*l as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// Java's `compareTo` between numbers of possibly different widths (NaN above everything).
fn compare_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Long(_), Value::Int(_) | Value::Long(_)) => {
            let w = |v: &Value| match v {
                Value::Int(i) => i64::from(*i),
                Value::Long(l) => *l,
                _ => 0,
            };
            Some(w(a).cmp(&w(b)))
        }
        _ => {
            let (x, y) = (as_f64(a)?, as_f64(b)?);
            // Double.compareTo: NaN above everything (and equal to itself), -0.0 < 0.0.
            Some(match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => x.total_cmp(&y),
            })
        }
    }
}

/// Converts a property string to the type of the literal it is compared with.
fn coerce(s: &str, like: &Value) -> Result<Value, EvalError> {
    let fail = || EvalError(format!("cannot compare '{s}' with {like}"));
    Ok(match like {
        Value::Int(_) => Value::Int(parse_int(s).ok_or_else(fail)?),
        Value::Long(_) => Value::Long(parse_long(s).ok_or_else(fail)?),
        Value::Double(_) => Value::Double(parse_double(s).ok_or_else(fail)?),
        Value::Bool(_) => Value::Bool(s.eq_ignore_ascii_case("true")),
        Value::Str(_) => Value::Str(s.to_string()),
    })
}

/// Both sides in one type, as Java compares them (`None` when they cannot be compared).
fn unify(a: Value, b: Value) -> Result<Option<(Value, Value)>, EvalError> {
    Ok(match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some((Value::Str(x), Value::Str(y))),
        (Value::Str(x), other) => Some((coerce(&x, &other)?, other)),
        (other, Value::Str(y)) => {
            let y = coerce(&y, &other)?;
            Some((other, y))
        }
        (Value::Bool(x), Value::Bool(y)) => Some((Value::Bool(x), Value::Bool(y))),
        (Value::Bool(_), _) | (_, Value::Bool(_)) => None,
        (x, y) => Some((x, y)),
    })
}

/// Three-valued result: `None` is unknown.
type Tri = Option<bool>;

/// Looks up message properties by name.
pub trait Properties {
    /// The value of property `name`.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Properties for &str {
    fn get(&self, name: &str) -> Option<&str> {
        crate::message::get_property(self, name)
    }
}

impl Properties for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::HashMap::get(self, name).map(String::as_str)
    }
}

impl Expression {
    /// Whether a message with `properties` matches: only a definite TRUE does; unknown and
    /// conversion failures do not.
    pub fn matches(&self, properties: &dyn Properties) -> bool {
        matches!(self.eval(properties), Ok(Some(Value::Bool(true))))
    }

    /// Evaluates to a value (`None` = NULL / unknown); an error when a conversion fails.
    pub fn eval(&self, props: &dyn Properties) -> Result<Option<Value>, EvalError> {
        Ok(match self {
            Expression::Const(v) => v.clone(),
            Expression::Property(name) => props.get(name).map(|s| Value::Str(s.to_string())),
            Expression::BoolCast(e) => match e.eval(props)? {
                None => None,
                Some(Value::Bool(b)) => Some(Value::Bool(b)),
                Some(_) => Some(Value::Bool(false)),
            },
            Expression::Not(e) => e.tri(props)?.map(|b| Value::Bool(!b)),
            Expression::Negate(e) => match e.eval(props)? {
                Some(Value::Int(i)) => {
                    Some(i.checked_neg().map_or(Value::Long(-(i as i64)), Value::Int))
                }
                Some(Value::Long(l)) => Some(Value::Long(l.wrapping_neg())),
                Some(Value::Double(d)) => Some(Value::Double(-d)),
                _ => None,
            },
            Expression::And(a, b) => match a.tri(props)? {
                Some(false) => Some(Value::Bool(false)),
                left => match (left, b.tri(props)?) {
                    (_, Some(false)) => Some(Value::Bool(false)),
                    (Some(true), Some(true)) => Some(Value::Bool(true)),
                    _ => None,
                },
            },
            Expression::Or(a, b) => match a.tri(props)? {
                Some(true) => Some(Value::Bool(true)),
                left => match (left, b.tri(props)?) {
                    (_, Some(true)) => Some(Value::Bool(true)),
                    (Some(false), Some(false)) => Some(Value::Bool(false)),
                    _ => None,
                },
            },
            Expression::Eq(a, b) => {
                let (l, r) = (a.eval(props)?, b.eval(props)?);
                match (l, r) {
                    (None, None) => Some(Value::Bool(true)),
                    (None, Some(_)) => None,
                    (Some(_), None) => Some(Value::Bool(false)),
                    (Some(l), Some(r)) => Some(Value::Bool(match unify(l, r)? {
                        None => false,
                        Some((Value::Str(x), Value::Str(y))) => x == y,
                        Some((Value::Bool(x), Value::Bool(y))) => x == y,
                        Some((x, y)) => compare_numbers(&x, &y) == Some(Ordering::Equal),
                    })),
                }
            }
            Expression::Cmp(op, a, b) => {
                let (Some(l), Some(r)) = (a.eval(props)?, b.eval(props)?) else {
                    return Ok(None);
                };
                let (l, r) = match (l, r) {
                    (Value::Str(x), Value::Str(y)) => {
                        let fail = || {
                            EvalError(format!(
                                "cannot order '{x}' and '{y}': they are not numbers"
                            ))
                        };
                        (
                            Value::Double(parse_double(&x).ok_or_else(fail)?),
                            Value::Double(parse_double(&y).ok_or_else(fail)?),
                        )
                    }
                    (l, r) => unify(l, r)?
                        .ok_or_else(|| EvalError("a boolean cannot be ordered".into()))?,
                };
                let ord = compare_numbers(&l, &r)
                    .ok_or_else(|| EvalError(format!("cannot order {l} and {r}")))?;
                Some(Value::Bool(match op {
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                }))
            }
            Expression::In {
                property,
                values,
                negated,
            } => props
                .get(property)
                .map(|v| Value::Bool(values.iter().any(|x| x == v) != *negated)),
            Expression::Str {
                op,
                subject,
                pattern,
                negated,
            } => {
                let hit = match subject.eval(props)? {
                    Some(Value::Str(s)) if !pattern.is_empty() => Some(match op {
                        StrOp::Contains => s.contains(pattern.as_str()),
                        StrOp::StartsWith => s.starts_with(pattern.as_str()),
                        StrOp::EndsWith => s.ends_with(pattern.as_str()),
                    }),
                    _ => None,
                };
                // A missing value or an empty pattern is FALSE for both forms.
                Some(Value::Bool(hit.is_some_and(|h| h != *negated)))
            }
        })
    }

    fn tri(&self, props: &dyn Properties) -> Result<Tri, EvalError> {
        Ok(match self.eval(props)? {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => Some(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(expr: &str, pairs: &[(&str, &str)]) -> bool {
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .matches(&props(pairs))
    }

    #[test]
    fn java_unit_test_cases() {
        let e = "a=3 and b<>4 And c>5 AND d<=4";
        assert!(m(e, &[("a", "3"), ("b", "5"), ("c", "6"), ("d", "1")]));
        assert!(!m(e, &[("a", "4"), ("b", "5"), ("c", "6"), ("d", "1")]));
        let e = "a=3 or b<>4 Or c>5 OR d<=4";
        assert!(!m(e, &[("a", "4"), ("b", "4"), ("c", "3"), ("d", "10")]));
        assert!(m(e, &[("a", "4"), ("b", "4"), ("c", "3"), ("d", "2")]));
        assert!(m(e, &[("a", "3")]));
        assert!(m("a in ('3','4','5')", &[("a", "4")]));
        assert!(!m("a in ('3','4','5')", &[("a", "8")]));
        assert!(m("a not in ('3','4','5')", &[("a", "8")]));
        assert!(!m("a not in ('3','4','5')", &[("a", "3")]));
        for (v, want) in [("2", true), ("10", true), ("1", false), ("11", false)] {
            assert_eq!(m("a between 2 and 10", &[("a", v)]), want, "{v}");
        }
        for (v, want) in [("1", true), ("11", true), ("3", false)] {
            assert_eq!(m("a not between 2 and 10", &[("a", v)]), want, "{v}");
        }
        assert!(m("a is null", &[("abc", "2")]));
        assert!(!m("a is null", &[("a", "2")]));
        assert!(m("a is not null", &[("a", "2")]));
        assert!(!m("a is not null", &[("abc", "2")]));
        assert!(m("a is not null and a='hello'", &[("a", "hello")]));
        assert!(!m("a is not null and a='hello'", &[]));
        assert!(m("a is null OR a='hello'", &[]));
        assert!(!m("a is null OR a='hello'", &[("a", "abc")]));
        assert!(m("a=TRUE OR b=FALSE", &[("a", "true"), ("b", "false")]));
        assert!(!m("a=TRUE OR b=FALSE", &[("a", "false"), ("b", "true")]));
        assert!(m("a > 3.14", &[("a", "3.1415")]));
        assert!(m("a > 3.1E10", &[("a", "31415000000.0")]));
        assert!(!m("a > b", &[("a", "10"), ("b", "20")]));
        assert!(m("a > b", &[("a", "20"), ("b", "10")]));
        assert!(!m(
            "a between up and low",
            &[("a", "3.14"), ("up", "up"), ("low", "low")]
        ));
        assert!(m("value contains 'x'", &[("value", "axb")]));
        assert!(m("value startswith 'ax'", &[("value", "axb")]));
        assert!(m("value endswith 'xb'", &[("value", "axb")]));
        assert!(!m("value contains 'x'", &[("value", "abb")]));
        assert!(m("value not contains 'x'", &[("value", "abb")]));
        assert!(!m("value not contains 'x'", &[("value", "axb")]));
        assert!(!m("value not contains 'x'", &[]));
        assert!(!m("value contains ''", &[("value", "axb")]));
        assert!(!m("value not contains ''", &[("value", "axb")]));
        assert!(m("'axb' not contains 'u'", &[]));
        assert!(m("' ' contains ' '", &[]));
        assert!(m(
            "TAGS is not null and TAGS='''''tag'''''",
            &[("TAGS", "''tag''")]
        ));
        assert!(parse("a <= now").is_ok());
        assert!(parse("(a not in ('6','4','5')) or (b in ('3','4','5'))").is_ok());
    }

    #[test]
    fn conversions_follow_the_literal_type() {
        assert!(!m("a = 3", &[("a", "3.0")]));
        assert!(m("a = 3", &[("a", "+3")]));
        assert!(m("a = 3", &[("a", "03")]));
        assert!(!m("a = 3", &[("a", " 3")]));
        assert!(!m("a = 3", &[]));
        assert!(m("a = 3.0", &[("a", "3")]));
        assert!(m("a = 3.0", &[("a", " 3.0")]));
        assert!(!m("a > 3", &[("a", "3.5")]), "an int literal reads an int");
        assert!(m("a > 3.0", &[("a", "3.5")]));
        assert!(!m("a = 3", &[("a", "3000000000")]));
        assert!(m("a = 3000000000", &[("a", "3000000000")]));
        assert!(m("a = 10L", &[("a", "10")]));
        assert!(!m("a <> 3", &[]));
        assert!(m("a <> 3", &[("a", "4")]));
        assert!(!m("a <> 3", &[("a", "abc")]));
        assert!(m("a = FALSE", &[("a", "yes")]));
        assert!(!m("a = TRUE", &[("a", "1")]));
        assert!(m("TRUE = a", &[("a", "true")]), "Java fails here (a bug)");
        assert!(!m("a", &[("a", "true")]));
        assert!(m("NOT a", &[("a", "true")]));
        assert!(!m("NOT a", &[]));
        assert!(m("'x' <> a", &[]));
        assert!(!m("a <> 'x'", &[]));
        assert!(m("NOT (a contains 'x')", &[]));
        assert!(!m("a in ('3','4')", &[("a", "3.0")]));
        assert!(!m("a not in ('3','4')", &[]));
        assert!(!m("NOT a = 1", &[("a", "1")]));
        assert!(m(
            "a = 1 OR b = 2 AND c = 3",
            &[("a", "1"), ("b", "0"), ("c", "0")]
        ));
        assert!(!m(
            "(a = 1 OR b = 2) AND c = 3",
            &[("a", "1"), ("b", "0"), ("c", "0")]
        ));
        assert!(m("x = 1 OR a = 1", &[("a", "1")]));
        assert!(!m("x = 1 AND a = 1", &[("a", "1")]));
        assert!(m("a = 'it''s'", &[("a", "it's")]));
        assert!(!m("a = 'abc'", &[("a", "ABC")]));
        assert!(!m("A = 1", &[("a", "1")]));
        assert!(m("a > 3.0", &[("a", "NaN")]));
        assert!(m("a > 3.0", &[("a", "Infinity")]));
        assert!(m("a = 3.5", &[("a", "3.5f")]));
        assert!(
            parse("a between -1 and -5").is_err(),
            "an empty range is refused (Java accepts it and never matches)"
        );
        assert!(m("a between -5 and -1", &[("a", "-3")]));
        assert!(m("b=2 OR a=1", &[("a", "abc"), ("b", "2")]));
        assert!(
            !m("a=1 OR b=2", &[("a", "abc"), ("b", "2")]),
            "left side fails first"
        );
        assert!(
            m("a = 0.0", &[("a", "0")]),
            "zero decimals parse (Java bug fixed)"
        );
        assert!(m("-- comment\n a /* x */ = 1", &[("a", "1")]));
    }

    #[test]
    fn parse_errors_say_where_and_why() {
        for bad in [
            "a and between 2 and 10",
            "a between 10 and 0",
            "a > 100000000000000000000000",
            "value contains x",
            "value contains 123",
            "'axb' contains ",
            "a != 3",
            "a = NULL",
            "a > 'abc'",
            "a = 1e400",
            "a = 9223372036854775808",
            "a.b = 1",
            "a = \"x\"",
            "in = 1",
            "'abc'",
            "3",
            "a in (3,4)",
            "a in ()",
            "NOT a IN ('x')",
            "TRUE = 1",
            "a > 1 > 0",
            "",
            "   ",
            "a = 3 garbage",
            "a like 'x%'",
            "(a = 1",
            "a = 'unterminated",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.column >= 1, "{bad}: {e}");
        }
        let e = parse("a != 3").unwrap_err();
        assert!(e.to_string().contains("use <>"), "{e}");
        let e = parse("a = 3 garbage").unwrap_err();
        assert_eq!(e.column, 7, "{e}");
        assert!(e.message.contains("property garbage"), "{e}");
        let e = parse("a between 10 and 2").unwrap_err();
        assert!(e.message.contains("low value 10"), "{e}");
    }

    #[test]
    fn properties_string_lookup() {
        let e = parse("color = 'red' AND price > 10").unwrap();
        let raw = crate::message::encode_properties([("color", "red"), ("price", "11")]);
        assert!(e.matches(&raw.as_str()));
        let raw = crate::message::encode_properties([("color", "red"), ("price", "9")]);
        assert!(!e.matches(&raw.as_str()));
    }
}
