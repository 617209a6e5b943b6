"""After the PR opened: runs on review (review.py) and on a staging deployment (validation.py), continuing the
incident from what the first run wrote on the PR (marker.py). docs/review-and-validation.md is the user's view."""
