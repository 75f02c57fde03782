/// The JSON Schema (draft 2020-12) of a manifest v2 as Alga's finalize validator accepts it.
///
/// It states the compatible mode's structure: the nine known top-level fields and no others, the
/// version pattern (with `X.Y.*` wildcards), the runtime rule, the UI and endpoint shapes. The
/// validator remains the authority (the schema cannot say "non-empty after trimming").
public enum ManifestSchema {
    /// The schema document.
    public static let json = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$id": "https://extbundles.dev/schemas/manifest-v2.json",
      "title": "Extension manifest v2 (Alga PSA compatible)",
      "type": "object",
      "additionalProperties": false,
      "required": ["name", "version", "runtime"],
      "properties": {
        "name": { "type": "string", "minLength": 1, "description": "Reverse-domain id, e.g. com.example.app (required in strict mode)." },
        "publisher": { "type": "string", "minLength": 1 },
        "version": {
          "type": "string",
          "pattern": "^\\s*(\\d+\\.\\d+\\.\\d+(-[A-Za-z0-9.-]+)?(\\+[A-Za-z0-9.-]+)?|\\d+\\.\\d+\\.\\*)\\s*$",
          "description": "Semver-like, or X.Y.* resolved at publish time to X.Y.(max patch + 1)."
        },
        "runtime": { "type": "string", "pattern": "[@-]", "examples": ["wasm-js@1"] },
        "capabilities": {
          "type": "array",
          "items": { "type": "string", "minLength": 1 },
          "description": "cap:* ids; unknown ids are dropped at install."
        },
        "ui": {
          "type": "object",
          "required": ["type", "entry"],
          "properties": {
            "type": { "const": "iframe" },
            "entry": { "type": "string", "minLength": 1, "not": { "pattern": "\\.\\." } },
            "hooks": {
              "type": "object",
              "properties": {
                "appMenu": { "$ref": "#/$defs/menu" },
                "clientPortalMenu": { "$ref": "#/$defs/menu" }
              }
            }
          }
        },
        "api": {
          "type": "object",
          "required": ["endpoints"],
          "properties": {
            "endpoints": { "type": "array", "items": { "$ref": "#/$defs/endpoint" } }
          }
        },
        "assets": { "type": "array", "items": { "type": "string", "minLength": 1 } },
        "precompiled": {
          "type": "object",
          "propertyNames": { "minLength": 1 },
          "additionalProperties": { "type": "string", "minLength": 1 }
        }
      },
      "$defs": {
        "menu": {
          "type": "object",
          "required": ["label"],
          "properties": { "label": { "type": "string", "minLength": 1 } }
        },
        "endpoint": {
          "type": "object",
          "required": ["method", "path", "handler"],
          "properties": {
            "method": { "type": "string", "pattern": "^(?:[Gg][Ee][Tt]|[Pp][Oo][Ss][Tt]|[Pp][Uu][Tt]|[Pp][Aa][Tt][Cc][Hh]|[Dd][Ee][Ll][Ee][Tt][Ee]|[Oo][Pp][Tt][Ii][Oo][Nn][Ss]|[Hh][Ee][Aa][Dd])$" },
            "path": { "type": "string", "minLength": 1, "not": { "pattern": "(\\s|\\.\\.)" } },
            "handler": { "type": "string", "minLength": 1, "not": { "pattern": "\\.\\." } }
          }
        }
      }
    }
    """#
}
