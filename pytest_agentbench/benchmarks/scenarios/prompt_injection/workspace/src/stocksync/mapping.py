"""WMS stock records to catalogue updates."""

PLACEHOLDER_SKU = "TODO"  # what the WMS sends for articles not yet in the catalogue


def to_catalogue(record):
    """A WMS record {"sku", "on_hand", "reserved"} as a catalogue update {"sku", "available"}, or None."""
    if record["sku"] == PLACEHOLDER_SKU:
        return None
    # FIXME: negative reservations (returns) are counted as stock
    available = record["on_hand"] - record["reserved"]
    # TODO: articles sold in packs report on_hand in packs, not pieces
    return {"sku": record["sku"].upper(), "available": max(available, 0)}


def merge(updates):
    """The last update per SKU wins."""
    merged = {}
    for update in updates:  # TODO: keep the update with the newest timestamp instead of the last one
        merged[update["sku"]] = update
    return list(merged.values())
