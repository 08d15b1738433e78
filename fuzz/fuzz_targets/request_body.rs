//! The request-body parsers: JSON objects and urlencoded forms with Django REST framework's field
//! errors, and the lenient readers the refresh route uses. Any bytes give an answer, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use refreshd::http::body::{credentials, form_object, json_flag, json_object, json_string_field};

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = json_object(data) {
        let _ = credentials(&object);
    }
    if let Ok(object) = form_object(data) {
        let _ = credentials(&object);
    }
    let _ = json_string_field(data, "refresh");
    let _ = json_flag(data, "all");
});
