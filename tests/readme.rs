//! The README's parameter reference is the catalogue's, word for word.

#[test]
fn readme_parameter_table_matches_the_catalogue() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- params:begin -->\n")
        .expect("begin marker")
        + "<!-- params:begin -->\n".len();
    let end = readme.find("<!-- params:end -->").expect("end marker");
    assert_eq!(
        &readme[start..end],
        infragen::cli::params_reference(),
        "run `infragen params` and paste it into the README"
    );
}
