//! Translates the Elasticsearch query DSL subset (`match`, `match_phrase`, `term`, `terms`,
//! `range`, `bool`, `match_all`, `query_string`) and plain query strings into Tantivy queries.
//!
//! Every rejection names what was wrong, so a client sees `unknown field "hostname"` rather than
//! an empty result (Chronik silently fell back to match-all on schema mismatches).

use std::ops::Bound;

use serde_json::Value;
use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, FieldType, IndexRecordOption};
use tantivy::tokenizer::TokenStream;

use crate::error::{Error, Result};
use crate::shard::text::TextIndex;

/// Builds queries against the shared text schema; any partition's index serves as the template.
pub struct QueryTranslator<'a> {
    index: &'a TextIndex,
}

impl<'a> QueryTranslator<'a> {
    pub fn new(index: &'a TextIndex) -> Self {
        Self { index }
    }

    /// Parses Tantivy query syntax (`error AND kernel`, `"disk I/O error"`, `host:dn228`) over
    /// `message`, OR between bare terms as Elasticsearch's `query_string` does.
    pub fn query_string(&self, q: &str) -> Result<Box<dyn Query>> {
        if q.trim().is_empty() || q.trim() == "*" {
            return Ok(Box::new(AllQuery));
        }
        let parser = QueryParser::for_index(self.index.index(), vec![self.index.fields().message]);
        parser
            .parse_query(q)
            .map_err(|e| Error::bad_request(format!("invalid query string {q:?}: {e}")))
    }

    /// Translates one DSL query object.
    pub fn dsl(&self, query: &Value) -> Result<Box<dyn Query>> {
        let obj = query
            .as_object()
            .ok_or_else(|| Error::bad_request(format!("query must be an object, got {query}")))?;
        if obj.len() != 1 {
            return Err(Error::bad_request(format!(
                "query object must have exactly one clause, got {}",
                obj.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let (kind, body) = obj.iter().next().expect("one clause");
        match kind.as_str() {
            "match_all" => Ok(Box::new(AllQuery)),
            "match" => self.match_query(body, false),
            "match_phrase" => self.match_query(body, true),
            "term" => {
                let (field, value) = single_field(kind, body)?;
                let value = value.get("value").unwrap_or(value);
                Ok(Box::new(TermQuery::new(
                    self.term(&field, value)?,
                    IndexRecordOption::WithFreqs,
                )))
            }
            "terms" => {
                let (field, values) = single_field(kind, body)?;
                let values = values
                    .as_array()
                    .ok_or_else(|| Error::bad_request(format!("terms.{field} must be an array")))?;
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for v in values {
                    clauses.push((
                        Occur::Should,
                        Box::new(TermQuery::new(
                            self.term(&field, v)?,
                            IndexRecordOption::Basic,
                        )),
                    ));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
            "range" => self.range(body),
            "bool" => self.bool_query(body),
            "query_string" => {
                let q = body
                    .get("query")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::bad_request("query_string needs a string \"query\""))?;
                self.query_string(q)
            }
            other => Err(Error::bad_request(format!(
                "unsupported query type {other:?} (supported: match, match_phrase, term, terms, range, bool, match_all, query_string)"
            ))),
        }
    }

    fn field(&self, name: &str) -> Result<Field> {
        let name = if name == "_all" || name == "*" {
            "message"
        } else {
            name
        };
        self.index.fields().by_name(name).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown field {name:?} (fields: message, host, location, component, label, severity, level, pid, timestamp, _offset)"
            ))
        })
    }

    fn is_text(&self, field: Field) -> bool {
        field == self.index.fields().message
    }

    /// A term for an exact match: keyword fields compare as written, `message` lowercased like
    /// its analyser, numbers parsed for numeric fields.
    fn term(&self, field_name: &str, value: &Value) -> Result<Term> {
        let field = self.field(field_name)?;
        let schema = self.index.index().schema();
        match schema.get_field_entry(field).field_type() {
            FieldType::Str(_) => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(Error::bad_request(format!(
                            "term value for {field_name} must be a string, got {other}"
                        )));
                    }
                };
                let text = if self.is_text(field) {
                    text.to_lowercase()
                } else {
                    text
                };
                Ok(Term::from_field_text(field, &text))
            }
            FieldType::I64(_) => Ok(Term::from_field_i64(field, as_i64(field_name, value)?)),
            FieldType::U64(_) => {
                let v = as_i64(field_name, value)?;
                let v = u64::try_from(v).map_err(|_| {
                    Error::bad_request(format!("{field_name} must not be negative"))
                })?;
                Ok(Term::from_field_u64(field, v))
            }
            _ => Err(Error::bad_request(format!(
                "field {field_name} cannot be queried by term"
            ))),
        }
    }

    fn match_query(&self, body: &Value, phrase: bool) -> Result<Box<dyn Query>> {
        let (field_name, spec) = single_field("match", body)?;
        let (text, and) = match spec {
            Value::Object(o) => {
                let text = o.get("query").ok_or_else(|| {
                    Error::bad_request(format!("match.{field_name} needs \"query\""))
                })?;
                let and = o
                    .get("operator")
                    .and_then(Value::as_str)
                    .is_some_and(|op| op.eq_ignore_ascii_case("and"));
                (text.clone(), and)
            }
            other => (other.clone(), false),
        };
        let field = self.field(&field_name)?;
        if !self.is_text(field) {
            // Keyword and numeric fields match their whole value, as Elasticsearch does.
            return Ok(Box::new(TermQuery::new(
                self.term(&field_name, &text)?,
                IndexRecordOption::WithFreqs,
            )));
        }
        let text = match &text {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let terms = self.analyse(field, &text);
        if terms.is_empty() {
            return Ok(Box::new(AllQuery));
        }
        if phrase && terms.len() > 1 {
            return Ok(Box::new(PhraseQuery::new(terms)));
        }
        let occur = if and { Occur::Must } else { Occur::Should };
        let clauses = terms
            .into_iter()
            .map(|t| {
                (
                    occur,
                    Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)) as Box<dyn Query>,
                )
            })
            .collect();
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// Tokenises `text` with the field's analyser, so match queries see the indexed terms.
    fn analyse(&self, field: Field, text: &str) -> Vec<Term> {
        let mut analyzer = self
            .index
            .index()
            .tokenizer_for_field(field)
            .expect("message has a tokenizer");
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(Term::from_field_text(field, &stream.token().text));
        }
        terms
    }

    fn range(&self, body: &Value) -> Result<Box<dyn Query>> {
        let (field_name, spec) = single_field("range", body)?;
        let spec = spec
            .as_object()
            .ok_or_else(|| Error::bad_request(format!("range.{field_name} must be an object")))?;
        let mut lower = Bound::Unbounded;
        let mut upper = Bound::Unbounded;
        for (op, value) in spec {
            let term = self.term(&field_name, value)?;
            match op.as_str() {
                "gte" => lower = Bound::Included(term),
                "gt" => lower = Bound::Excluded(term),
                "lte" => upper = Bound::Included(term),
                "lt" => upper = Bound::Excluded(term),
                "format" | "boost" => {}
                other => {
                    return Err(Error::bad_request(format!(
                        "unsupported range operator {other:?} (use gte, gt, lte, lt)"
                    )));
                }
            }
        }
        Ok(Box::new(RangeQuery::new(lower, upper)))
    }

    fn bool_query(&self, body: &Value) -> Result<Box<dyn Query>> {
        let obj = body
            .as_object()
            .ok_or_else(|| Error::bad_request("bool must be an object"))?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut has_required = false;
        let mut shoulds: Vec<Box<dyn Query>> = Vec::new();
        let mut minimum_should_match = None;
        for (key, value) in obj {
            let items: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            match key.as_str() {
                "must" | "filter" => {
                    has_required = true;
                    for item in items {
                        clauses.push((Occur::Must, self.dsl(item)?));
                    }
                }
                "must_not" => {
                    for item in items {
                        clauses.push((Occur::MustNot, self.dsl(item)?));
                    }
                }
                "should" => {
                    for item in items {
                        shoulds.push(self.dsl(item)?);
                    }
                }
                "minimum_should_match" => minimum_should_match = value.as_u64(),
                "boost" => {}
                other => {
                    return Err(Error::bad_request(format!(
                        "unsupported bool clause {other:?}"
                    )));
                }
            }
        }
        // Elasticsearch semantics: without must/filter at least one should clause has to match;
        // with them, should clauses only add score unless minimum_should_match says otherwise.
        let need_should = minimum_should_match.unwrap_or(if has_required { 0 } else { 1 });
        if !shoulds.is_empty() {
            if need_should > 0 {
                let group: Vec<(Occur, Box<dyn Query>)> =
                    shoulds.into_iter().map(|q| (Occur::Should, q)).collect();
                let group =
                    BooleanQuery::with_minimum_required_clauses(group, need_should as usize);
                clauses.push((Occur::Must, Box::new(group)));
            } else {
                clauses.extend(shoulds.into_iter().map(|q| (Occur::Should, q)));
            }
        }
        if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }
}

fn single_field<'v>(kind: &str, body: &'v Value) -> Result<(String, &'v Value)> {
    let obj = body
        .as_object()
        .ok_or_else(|| Error::bad_request(format!("{kind} must be an object")))?;
    let mut fields = obj.iter().filter(|(k, _)| k.as_str() != "boost");
    match (fields.next(), fields.next()) {
        (Some((k, v)), None) => Ok((k.clone(), v)),
        _ => Err(Error::bad_request(format!(
            "{kind} must name exactly one field"
        ))),
    }
}

fn as_i64(field: &str, value: &Value) -> Result<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| Error::bad_request(format!("{field} must be an integer, got {n}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| Error::bad_request(format!("{field} must be an integer, got {s:?}"))),
        other => Err(Error::bad_request(format!(
            "{field} must be an integer, got {other}"
        ))),
    }
}
