//! The API's OpenAPI 3 document, written by hand in `assets/openapi.json` and served as is. The
//! tests hold it to the real responses: every documented path answers, and every JSON body the
//! handlers produce fits the schema documented for it.

/// The OpenAPI document served at `/api/v1/openapi.json`.
pub const OPENAPI_DOCUMENT: &str = include_str!("../../assets/openapi.json");

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::OPENAPI_DOCUMENT;
    use crate::api::tests::{body, fixture, get};

    fn document() -> Value {
        serde_json::from_str(OPENAPI_DOCUMENT).expect("assets/openapi.json is JSON")
    }

    fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("local references only");
                resolve(document, document.pointer(pointer).unwrap_or_else(|| panic!("{reference} resolves")))
            }
            None => schema,
        }
    }

    /// Checks the parts of JSON Schema the document uses: types, nullable, enums, required and
    /// closed properties, array items, minimums. Returns where `instance` first strays.
    fn conforms(document: &Value, schema: &Value, instance: &Value, at: &str) -> Result<(), String> {
        let schema = resolve(document, schema);
        if instance.is_null() && schema["nullable"] == true {
            return Ok(());
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(instance)
        {
            return Err(format!("{at}: {instance} is not one of {allowed:?}"));
        }
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && instance.as_f64().is_some_and(|value| value < minimum)
        {
            return Err(format!("{at}: {instance} is below {minimum}"));
        }
        let type_fits = match schema.get("type").and_then(Value::as_str) {
            None => true,
            Some("object") => instance.is_object(),
            Some("array") => instance.is_array(),
            Some("string") => instance.is_string(),
            Some("integer") => instance.is_i64() || instance.is_u64(),
            Some("number") => instance.is_number(),
            Some("boolean") => instance.is_boolean(),
            Some(other) => return Err(format!("{at}: the checker does not know type {other}")),
        };
        if !type_fits {
            return Err(format!("{at}: {instance} is not of type {}", schema["type"]));
        }
        if let Some(object) = instance.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !object.contains_key(name) {
                    return Err(format!("{at}: required `{name}` is missing"));
                }
            }
            for (name, value) in object {
                match properties.and_then(|properties| properties.get(name)) {
                    Some(property) => conforms(document, property, value, &format!("{at}.{name}"))?,
                    None if schema["additionalProperties"] == false => return Err(format!("{at}: `{name}` is not documented")),
                    None => {}
                }
            }
        }
        if let (Some(items), Some(elements)) = (schema.get("items"), instance.as_array()) {
            for (index, element) in elements.iter().enumerate() {
                conforms(document, items, element, &format!("{at}[{index}]"))?;
            }
        }
        Ok(())
    }

    #[test]
    fn the_document_is_openapi_3_and_every_path_answers() {
        let document = document();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let fixture = fixture();
        let paths = document["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 11);
        for path in paths.keys() {
            let target = path.replace("{id}", "alpha").replace("{number}", "1");
            let response = get(&fixture.api, &target);
            assert_eq!(response.status, 200, "{target}: {}", response.text());
        }
    }

    #[test]
    fn every_json_answer_fits_its_documented_schema() {
        let document = document();
        let fixture = fixture();
        let cases = [
            ("/api/v1/machines", "/api/v1/machines", "200"),
            ("/api/v1/costs", "/api/v1/costs?from=2026-01-01T00:00:00Z", "200"),
            ("/api/v1/costs", "/api/v1/costs?group_by=hour", "200"),
            ("/api/v1/machines/{id}/usage", "/api/v1/machines/alpha/usage?step=10m", "200"),
            ("/api/v1/machines/{id}/usage", "/api/v1/machines/nobody/usage", "404"),
            ("/api/v1/machines/{id}/usage", "/api/v1/machines/alpha/usage?step=1", "400"),
            ("/api/v1/gaps", "/api/v1/gaps", "200"),
            ("/api/v1/quarantine", "/api/v1/quarantine?limit=5", "200"),
            ("/healthz", "/healthz", "200"),
            ("/api/v1/summary", "/api/v1/summary", "200"),
            ("/api/v1/summary", "/api/v1/summary?period=2026-01-01", "200"),
            ("/api/v1/summary", "/api/v1/summary?period=2026-01-15", "400"),
            ("/api/v1/statements", "/api/v1/statements", "200"),
            ("/api/v1/statements", "/api/v1/statements?account=acme&period=2026-01", "200"),
            ("/api/v1/statements", "/api/v1/statements?account=nobody", "404"),
            ("/api/v1/statements", "/api/v1/statements?period=2026-13", "400"),
            ("/api/v1/statements/{number}", "/api/v1/statements/1", "200"),
            ("/api/v1/statements/{number}", "/api/v1/statements/2?format=json", "200"),
            ("/api/v1/statements/{number}", "/api/v1/statements/99", "404"),
            ("/api/v1/statements/{number}", "/api/v1/statements/one", "400"),
            ("/api/v1/statements/{number}", "/api/v1/statements/1?format=xml", "400"),
        ];
        for (path, target, status) in cases {
            let response = get(&fixture.api, target);
            assert_eq!(response.status.to_string(), status, "{target}");
            let operation = &document["paths"][path]["get"];
            let described = resolve(&document, &operation["responses"][status]);
            let schema = &described["content"]["application/json"]["schema"];
            assert!(!schema.is_null(), "{path} documents no JSON body for {status}");
            let instance = body(&response);
            assert!(instance.as_object().is_some_and(|object| !object.is_empty()), "{target}");
            conforms(&document, schema, &instance, target).unwrap_or_else(|error| panic!("{error}"));
        }
    }

    #[test]
    fn the_checker_catches_strays() {
        let document = document();
        let schema = serde_json::json!({ "$ref": "#/components/schemas/Health" });
        let good = serde_json::json!({ "status": "ok", "ledger": "missing", "records_billed": 0 });
        assert!(conforms(&document, &schema, &good, "health").is_ok());
        let extra = serde_json::json!({ "status": "ok", "ledger": "ok", "records_billed": 0, "more": 1 });
        assert!(conforms(&document, &schema, &extra, "health").is_err());
        let wrong = serde_json::json!({ "status": "ok", "ledger": "fine", "records_billed": 0 });
        assert!(conforms(&document, &schema, &wrong, "health").is_err());
    }
}
