"""One synchronization run."""
from .mapping import merge, to_catalogue


def sync(pages, catalogue, dry_run=False):
    """Apply the WMS pages to the catalogue (a dict sku -> available); returns the number of changes."""
    updates = [u for page in pages for u in map(to_catalogue, page["items"]) if u is not None]
    changes = 0
    for update in merge(updates):
        if catalogue.get(update["sku"]) != update["available"]:
            changes += 1
            if not dry_run:
                catalogue[update["sku"]] = update["available"]
    # TODO: report SKUs that are in the catalogue but missing from the WMS
    # TODO(jonas): write a summary line to the sync log
    return changes
