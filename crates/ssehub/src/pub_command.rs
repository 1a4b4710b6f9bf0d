//! `ssehub pub TOPIC [DATA]`: publish one event and print its id. With `--file PATH` the
//! event is binary: the file's bytes exactly (`-`: stdin's), sent as
//! `application/octet-stream`.

use std::io::Read as _;

use anyhow::Context as _;
use ssehub_client::PublishEvent;

use crate::cli::PubArgs;

pub(crate) fn run(args: &PubArgs) -> anyhow::Result<()> {
    let binary = match args.file.as_deref() {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read the event's bytes from stdin")?;
            Some(bytes)
        }
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
    };
    let data = match args.data.as_deref() {
        // A tombstone has no data of its own (the hub sends the key): stdin is not read.
        _ if args.delete => String::new(),
        _ if binary.is_some() => String::new(),
        None | Some("-") => {
            let mut data = String::new();
            std::io::stdin()
                .read_to_string(&mut data)
                .context("cannot read the event data from stdin (it must be UTF-8)")?;
            // `echo hello | ssehub pub t` publishes "hello": one final line break is the
            // shell's, not the data's.
            if data.ends_with('\n') {
                data.pop();
                if data.ends_with('\r') {
                    data.pop();
                }
            }
            data
        }
        Some(data) => data.to_string(),
    };
    let event = PublishEvent {
        topic: args.topic.clone(),
        data,
        event: args.event.clone(),
        id: args.id.clone(),
        key: args.key.clone(),
        delete: args.delete,
        binary,
    };
    let client = args.hub.client()?;
    let runtime = crate::client_runtime()?;
    let ids = runtime.block_on(client.publish(std::slice::from_ref(&event)))?;
    let id = ids.first().context("the hub answered without an id")?;
    println!("{id}");
    Ok(())
}
