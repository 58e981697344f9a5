//! The CRD is generated from Rust types; these tests keep the checked-in manifest in step with
//! them and make sure kube-apiserver would accept the schema as structural.

use std::path::PathBuf;

use rocketmq_operator::crdgen::{CRD_PATH, crd_yaml};
use serde_json::Value;

#[test]
fn checked_in_crd_matches_the_rust_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_PATH);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run `cargo run -p rocketmq-operator --bin crdgen`",
            path.display()
        )
    });
    let generated = crd_yaml().expect("CRD renders as YAML");
    if on_disk != generated {
        let first_difference = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(disk, fresh)| disk != fresh)
            .map_or_else(
                || "one file is a prefix of the other".to_string(),
                |line| format!("first difference at line {}", line + 1),
            );
        panic!(
            "{} is out of date with operator/src/crd.rs ({first_difference}); \
             run `cargo run -p rocketmq-operator --bin crdgen` and commit the result",
            CRD_PATH
        );
    }
}

#[test]
fn crd_identity_printer_columns_and_subresources() {
    let crd =
        serde_json::to_value(rocketmq_operator::crdgen::definition()).expect("CRD serializes");
    assert_eq!(crd["metadata"]["name"], "rocketmqclusters.rocketmq.rs");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "RocketMQCluster");
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["rmq"])
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(
        version["subresources"]["status"].is_object(),
        "status subresource missing"
    );
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|column| column["name"].as_str().expect("column name"))
        .collect();
    assert_eq!(columns, ["Phase", "Ready", "Masters", "Age"]);
}

#[test]
fn generated_schema_is_structural() {
    let crd =
        serde_json::to_value(rocketmq_operator::crdgen::definition()).expect("CRD serializes");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let violations = structural_violations(schema);
    assert!(
        violations.is_empty(),
        "the CRD schema is not structural:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_schema_checker_catches_each_kind_of_violation() {
    // A checker that never fails proves nothing: feed it one violation of each rule.
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": { "description": "no type" },
            "reference": { "$ref": "#/definitions/x" },
            "choice": { "type": "string", "anyOf": [ { "type": "string" } ] },
            "unsigned": { "type": "integer", "format": "uint32" },
            "nullableType": { "type": ["string", "null"] },
            "mixed": { "type": "object", "properties": {}, "additionalProperties": { "type": "string" } },
            "openMap": { "type": "object", "additionalProperties": true },
            "list": { "type": "array" },
            "wrongDefault": { "type": "integer", "default": "three" },
            "unknownDefaultKey": { "type": "object", "properties": { "a": { "type": "string" } }, "default": { "b": "x" } },
            "mapList": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": { "type": "object", "properties": { "name": { "type": "string" } } }
            },
            "constant": { "type": "string", "const": "x" }
        }
    });
    let violations = structural_violations(&bad).join("\n");
    for expected in [
        ".untyped: no type",
        ".reference: forbidden keyword $ref",
        ".choice: forbidden keyword anyOf",
        ".unsigned: integer format uint32",
        ".nullableType: type must be a single string",
        ".mixed: both properties and additionalProperties",
        ".openMap: additionalProperties must be a schema",
        ".list: array without items",
        ".wrongDefault: default \"three\" does not match type integer",
        ".unknownDefaultKey: default has unknown property b",
        ".mapList: list-map key name is neither required nor defaulted",
        ".constant: forbidden keyword const",
    ] {
        assert!(
            violations.contains(expected),
            "checker missed {expected:?}; got:\n{violations}"
        );
    }
}

/// Keywords kube-apiserver accepts in a CRD's OpenAPI v3 schema (JSONSchemaProps), minus
/// the ones that make a schema non-structural when used without care (`$ref`, `oneOf`,
/// `anyOf`, `allOf`, `not`), which the operator's schema never needs.
const ALLOWED_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "enum",
    "default",
    "nullable",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "example",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
];

const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

fn structural_violations(schema: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    check_node(schema, "", &mut violations);
    violations
}

fn check_node(node: &Value, path: &str, violations: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        violations.push(format!("{path}: schema is not an object"));
        return;
    };
    let mut report = |message: String| violations.push(format!("{path}: {message}"));
    for key in object.keys() {
        if !ALLOWED_KEYWORDS.contains(&key.as_str()) {
            report(format!("forbidden keyword {key}"));
        }
    }
    let untyped_allowed = object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let type_name = match object.get("type") {
        None if untyped_allowed => None,
        None => {
            report("no type".into());
            None
        }
        Some(Value::String(name)) if TYPES.contains(&name.as_str()) => Some(name.as_str()),
        Some(Value::String(name)) => {
            report(format!("unknown type {name}"));
            None
        }
        Some(_) => {
            report("type must be a single string".into());
            None
        }
    };
    if let Some(format) = object.get("format").and_then(Value::as_str) {
        match type_name {
            Some("integer") if !matches!(format, "int32" | "int64") => report(format!(
                "integer format {format} (only int32/int64 are kept)"
            )),
            Some("number") if !matches!(format, "float" | "double") => report(format!(
                "number format {format} (only float/double are kept)"
            )),
            _ => {}
        }
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        report("both properties and additionalProperties".into());
    }
    if let Some(additional) = object.get("additionalProperties") {
        if additional.is_object() {
            check_node(additional, &format!("{path}.*"), violations);
        } else {
            violations.push(format!("{path}: additionalProperties must be a schema"));
        }
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            check_node(property, &format!("{path}.{name}"), violations);
        }
    }
    if type_name == Some("array") {
        match object.get("items") {
            Some(items) => check_node(items, &format!("{path}[]"), violations),
            None => violations.push(format!("{path}: array without items")),
        }
        if object.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            check_list_map_keys(object, path, violations);
        }
    }
    if let Some(default) = object.get("default") {
        check_value_against(default, node, path, "default", violations);
    }
    if let Some(values) = object.get("enum").and_then(Value::as_array) {
        for value in values {
            check_value_against(value, node, path, "enum value", violations);
        }
    }
}

fn check_list_map_keys(
    object: &serde_json::Map<String, Value>,
    path: &str,
    violations: &mut Vec<String>,
) {
    let items = &object["items"];
    let required: Vec<&str> = items["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys = object
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if keys.is_empty() {
        violations.push(format!("{path}: list-type map without list-map-keys"));
    }
    for key in keys.iter().filter_map(Value::as_str) {
        let defaulted = items["properties"][key].get("default").is_some();
        if !required.contains(&key) && !defaulted {
            violations.push(format!(
                "{path}: list-map key {key} is neither required nor defaulted"
            ));
        }
    }
}

/// The API server prunes or rejects defaults that do not fit their schema; checking the
/// shape here catches a Rust default that serializes differently from its schema.
fn check_value_against(
    value: &Value,
    schema: &Value,
    path: &str,
    what: &str,
    violations: &mut Vec<String>,
) {
    let expected = schema.get("type").and_then(Value::as_str);
    let fits = match (expected, value) {
        (_, Value::Null) => schema.get("nullable") == Some(&Value::Bool(true)),
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), Value::Number(number)) => number.is_i64(),
        (Some("number"), Value::Number(_)) => true,
        (Some("array"), Value::Array(elements)) => {
            for element in elements {
                check_value_against(
                    element,
                    &schema["items"],
                    &format!("{path}[]"),
                    what,
                    violations,
                );
            }
            true
        }
        (Some("object"), Value::Object(fields)) => {
            for (name, field) in fields {
                if let Some(property) = schema["properties"].get(name) {
                    check_value_against(
                        field,
                        property,
                        &format!("{path}.{name}"),
                        what,
                        violations,
                    );
                } else if let Some(additional) = schema.get("additionalProperties") {
                    check_value_against(
                        field,
                        additional,
                        &format!("{path}.{name}"),
                        what,
                        violations,
                    );
                } else {
                    violations.push(format!("{path}: {what} has unknown property {name}"));
                }
            }
            true
        }
        (None, _) => true,
        _ => false,
    };
    if !fits {
        violations.push(format!(
            "{path}: {what} {value} does not match type {}",
            expected.unwrap_or("?")
        ));
    }
}
