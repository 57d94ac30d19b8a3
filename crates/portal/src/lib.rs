//! The web portal's files, embedded at build time (see `build.rs`): looked up by path and
//! served by the admin API's listener. No HTTP here; the API crate serves what this finds.

include!(concat!(env!("OUT_DIR"), "/files.rs"));

/// One file of the portal.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub bytes: &'static [u8],
    /// The same bytes gzip-compressed, when the build made a twin (compressible, over 1 KiB).
    pub gzip: Option<&'static [u8]>,
    pub content_type: &'static str,
    /// Named by its content's hash (Vite's `assets/`): cacheable forever.
    pub immutable: bool,
}

fn find(path: &str) -> Option<&'static [u8]> {
    FILES
        .binary_search_by(|(name, _)| (*name).cmp(path))
        .ok()
        .map(|i| FILES[i].1)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// The file at `path` (`/` or empty is `index.html`); `None` for anything the build has
/// not got, the gzip twins included (they are only served through [`Asset::gzip`]).
pub fn asset(path: &str) -> Option<Asset> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if path.ends_with(".gz") {
        return None;
    }
    let bytes = find(path)?;
    let gzip = FILES
        .iter()
        .find(|(name, _)| {
            name.len() == path.len() + 3 && name.starts_with(path) && name.ends_with(".gz")
        })
        .map(|(_, bytes)| *bytes);
    Some(Asset {
        bytes,
        gzip,
        content_type: content_type(path),
        immutable: path.starts_with("assets/"),
    })
}

/// The portal's page: what every path of the portal that is not a file answers.
pub fn index() -> Asset {
    asset("index.html").expect("the build script checks that index.html exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_has_a_page_and_hashed_assets_with_gzip_twins() {
        let index = index();
        assert!(
            std::str::from_utf8(index.bytes)
                .unwrap()
                .contains("<div id=\"app\">")
        );
        assert!(!index.immutable);
        let scripts: Vec<_> = FILES
            .iter()
            .filter(|(name, _)| name.starts_with("assets/") && name.ends_with(".js"))
            .collect();
        assert!(!scripts.is_empty(), "no script in the build");
        for (name, _) in scripts {
            let asset = asset(name).unwrap();
            assert!(asset.immutable);
            assert_eq!(asset.content_type, "text/javascript; charset=utf-8");
            if asset.bytes.len() > 4096 {
                assert!(asset.gzip.is_some(), "{name} has no gzip twin");
            }
        }
        assert!(asset("assets/nothing.js").is_none());
        assert!(asset("index.html.gz").is_none());
    }
}
