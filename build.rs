//! Builds the C shim that receives libxml2/libxslt's variadic error callbacks
//! (src/template/xml_error.c).

fn main() {
    println!("cargo:rerun-if-changed=src/template/xml_error.c");
    cc::Build::new()
        .file("src/template/xml_error.c")
        .warnings(true)
        .compile("mgrnotify_xml_error");
}
