//! The gateway's own questions to the registry, for immutable tags: does this tag exist and
//! what does it point to (`HEAD` of the manifest), and which tags does a repository have.
//! Plain HTTP/1.1 on a fresh connection to a replica, bounded in size and time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every manifest type a registry may hold, so `HEAD` answers with the stored digest.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Largest answer read (a tag list of a very busy repository).
const MAX_ANSWER: usize = 16 << 20;
/// Most pages of a tag list followed.
const MAX_PAGES: usize = 100;

/// Where and how to ask.
pub struct RegistryClient<'a> {
    pub addr: SocketAddr,
    /// The `Host` the client used (the registry may build URLs from it).
    pub host: &'a str,
    /// The client's `Authorization`, passed on only with `auth.forward_authorization`.
    pub authorization: Option<&'a [u8]>,
    pub timeout: Duration,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RegistryClient<'_> {
    /// The digest tag (or digest) `reference` of `name` points to; `None` when unknown.
    pub async fn manifest_digest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<String>, String> {
        let answer = self
            .ask("HEAD", &format!("/v2/{name}/manifests/{reference}"))
            .await?;
        match answer.status {
            200 => answer
                .header("docker-content-digest")
                .map(|d| Some(d.trim().to_string()))
                .ok_or_else(|| {
                    "the registry's manifest answer has no Docker-Content-Digest".into()
                }),
            404 => Ok(None),
            status => Err(format!(
                "the registry answered {status} to HEAD of {name}:{reference}"
            )),
        }
    }

    /// Every tag of `name` (following `Link: <...>; rel="next"` pages).
    pub async fn tags(&self, name: &str) -> Result<Vec<String>, String> {
        let mut tags = Vec::new();
        let mut path = format!("/v2/{name}/tags/list");
        for _ in 0..MAX_PAGES {
            let answer = self.ask("GET", &path).await?;
            match answer.status {
                200 => {}
                404 => return Ok(tags),
                status => {
                    return Err(format!(
                        "the registry answered {status} to the tag list of {name}"
                    ))
                }
            }
            #[derive(serde::Deserialize)]
            struct List {
                tags: Option<Vec<String>>,
            }
            let list: List = serde_json::from_slice(&answer.body)
                .map_err(|e| format!("tag list of {name}: {e}"))?;
            tags.extend(list.tags.unwrap_or_default());
            match answer.header("link").and_then(next_page) {
                Some(next) if next.starts_with(&format!("/v2/{name}/tags/list")) => path = next,
                _ => return Ok(tags),
            }
        }
        Err(format!(
            "the tag list of {name} has more than {MAX_PAGES} pages"
        ))
    }

    async fn ask(&self, method: &str, path: &str) -> Result<Answer, String> {
        tokio::time::timeout(self.timeout, self.exchange(method, path))
            .await
            .map_err(|_| {
                format!(
                    "the registry did not answer {method} {path} within {:?}",
                    self.timeout
                )
            })?
    }

    async fn exchange(&self, method: &str, path: &str) -> Result<Answer, String> {
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("registry {}: {e}", self.addr))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: {MANIFEST_TYPES}, application/json\r\nUser-Agent: portcullis\r\nConnection: close\r\n", self.host).into_bytes();
        if let Some(auth) = self.authorization {
            head.extend_from_slice(b"Authorization: ");
            head.extend_from_slice(auth);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        stream.write_all(&head).await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER as u64 + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        if raw.len() > MAX_ANSWER {
            return Err(format!(
                "the registry's answer to {method} {path} is over {MAX_ANSWER} bytes"
            ));
        }
        parse_answer(&raw, method == "HEAD")
    }
}

/// Status, headers and (for a GET) the body, de-chunked.
fn parse_answer(raw: &[u8], head_only: bool) -> Result<Answer, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let end = match response.parse(raw) {
        Ok(httparse::Status::Complete(end)) => end,
        _ => return Err("the registry's answer is not HTTP".into()),
    };
    let status = response.code.unwrap_or(0);
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let rest = &raw[end..];
    let body = match (head_only, chunked) {
        (true, _) => Vec::new(),
        (false, true) => dechunk(rest)?,
        (false, false) => rest.to_vec(),
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk without its size line")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size: {e}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err("a chunk is cut short".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The path of a `Link: </v2/...>; rel="next"` header.
fn next_page(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| Some(part.split_once('<')?.1.split_once('>')?.0.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_with_chunked_bodies_and_next_pages() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nLink: </v2/a/tags/list?last=b&n=2>; rel=\"next\"\r\n\r\n5\r\n{\"tag\r\n9\r\ns\":[\"a\"]}\r\n0\r\n\r\n";
        let answer = parse_answer(raw, false).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"{\"tags\":[\"a\"]}");
        assert_eq!(
            next_page(answer.header("link").unwrap()).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        let head = parse_answer(
            b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:ab\r\nContent-Length: 9\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(head.header("Docker-Content-Digest"), Some("sha256:ab"));
        assert!(parse_answer(b"garbage", false).is_err());
        assert!(dechunk(b"zz\r\n").is_err());
    }
}
