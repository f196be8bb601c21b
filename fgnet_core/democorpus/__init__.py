"""The demo corpus renderer: procedural faces with known AUs and landmarks, written in the raw BP4D / DISFA layouts
(`corpus`), and the unlabelled pretraining corpus (`pretrain`). `face` builds identities and expressions, `render`
draws them, `domain` gives each corpus its camera look, `au_stats` holds the AU statistics the demo sequences follow.
It writes what the data layer reads and imports only from it."""
