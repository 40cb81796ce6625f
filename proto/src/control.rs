//! Control requests and replies between the CLI and the coordinator (`nija.ctl.<verb>`). Work in progress.
