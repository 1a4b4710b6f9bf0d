//! The fake model behind the LLM demo (`/demos/llm.html`): a small HTTP server inside the
//! process, on a loopback port of its own, that answers a POSTed prompt with a slow SSE
//! stream of `token` events, as a chat API streams a model's answer. `--demo` puts a relay
//! ([`PREFIX`]) in front of it, so the page's answer is stored by the hub and resumable.
//!
//! The answer is derived from the prompt only (no randomness, no clock), so a test can check
//! it whole: it echoes the prompt's first [`PROMPT_WORDS`] words, then a fixed text, at most
//! [`MAX_TOKENS`] tokens in all, one every [`TOKEN_EVERY`]. Each token's data is JSON,
//! `{"n": <0-based index>, "of": <count>, "text": "<word and its space>"}`, so that a client can
//! see that no token is missing or doubled. Only the relay is meant to call it; anyone else on
//! this machine may, and gets at most one short, bounded answer per request.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::response::sse::{Event, Sse};
use axum::routing::post;
use futures_util::Stream;

/// The hub's relay prefix for the fake model: the page POSTs to `/demo-ai/chat`. Not `/ai`,
/// so that a relay of the user's own keeps that name.
pub(crate) const PREFIX: &str = "/demo-ai";
/// The most tokens of one answer.
const MAX_TOKENS: usize = 80;
/// How many words of the prompt the answer echoes (each cut to [`MAX_WORD_CHARS`]).
const PROMPT_WORDS: usize = 12;
/// The longest echoed word, in characters.
const MAX_WORD_CHARS: usize = 24;
/// The pause before each token: about ten a second, slow enough to cut mid-answer.
const TOKEN_EVERY: Duration = Duration::from_millis(100);
/// What follows the echoed prompt.
const ANSWER: &str = "Server-Sent Events stream text from a server to a browser over one \
    long HTTP response. Each event may carry an id, and a client that reconnects sends the \
    last id it saw, so the hub replays exactly what it missed: this answer survives a cut \
    connection without a gap or a repeat.";

/// Binds the fake model's listener, on a free loopback port (before the runtime starts, so
/// that the relay's upstream URL is known when the configuration is made).
pub(crate) fn bind() -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the fake model on `listener` until the process ends: `POST /chat` (any path).
pub(crate) async fn serve(listener: std::net::TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "the demo's fake model cannot listen");
            return;
        }
    };
    let app = Router::new().fallback(post(chat));
    if let Err(error) = axum::serve(listener, app).await {
        tracing::warn!(%error, "the demo's fake model stopped");
    }
}

/// The answer to a prompt: `{"prompt": "..."}`, or any other body taken as the prompt.
async fn chat(body: Bytes) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let prompt = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("prompt")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let tokens = answer(&prompt);
    let of = tokens.len();
    let stream =
        futures_util::stream::unfold(tokens.into_iter().enumerate(), move |mut rest| async move {
            let (n, text) = rest.next()?;
            tokio::time::sleep(TOKEN_EVERY).await;
            let data = serde_json::json!({ "n": n, "of": of, "text": text }).to_string();
            Some((Ok(Event::default().event("token").data(data)), rest))
        });
    Sse::new(stream)
}

/// The tokens of the answer to `prompt`: words, each with the space that follows it.
pub(crate) fn answer(prompt: &str) -> Vec<String> {
    let echoed: Vec<String> = prompt
        .split_whitespace()
        .take(PROMPT_WORDS)
        .map(|w| {
            w.chars()
                .filter(|c| !c.is_control())
                .take(MAX_WORD_CHARS)
                .collect()
        })
        .collect();
    let opening = match echoed.is_empty() {
        true => "You asked nothing, but here is an answer.".to_string(),
        false => format!("You asked: “{}”.", echoed.join(" ")),
    };
    opening
        .split_whitespace()
        .chain(ANSWER.split_whitespace())
        .take(MAX_TOKENS)
        .map(|w| format!("{w} "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_bounded_and_derived_from_the_prompt() {
        let tokens = answer("What is\nSSE?");
        assert_eq!(tokens[..5].concat(), "You asked: “What is SSE?”. ");
        assert_eq!(tokens, answer("What is SSE?"));
        let long = "word ".repeat(1000) + &"x".repeat(1000);
        let tokens = answer(&long);
        let fixed = ANSWER.split_whitespace().count();
        assert_eq!(tokens.len(), 2 + PROMPT_WORDS + fixed);
        assert!(tokens.len() <= MAX_TOKENS);
        assert!(
            tokens
                .iter()
                .all(|t| t.chars().count() <= MAX_WORD_CHARS + 8)
        );
        assert!(answer("").concat().starts_with("You asked nothing"));
        assert!(answer("\u{7}").concat().starts_with("You asked: “”"));
    }
}
