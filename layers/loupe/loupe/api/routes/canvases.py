"""Routes of the canvases function: graphs of queries, visualizations and notes (editors write, every
role reads)."""

from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.api.revisions import revision_routes
from loupe.models.canvases import CanvasCreate, CanvasUpdate
from loupe.services.canvases import canvases

router = LoupeRouter()

crud_routes(
    router,
    collection_path="/canvases",
    service=canvases,
    create_model=CanvasCreate,
    update_model=CanvasUpdate,
    tag="canvases",
    names=("Canvas", "Canvases"),
)
revision_routes(
    router,
    collection_path="/canvases",
    service=canvases,
    update_model=CanvasUpdate,
    tag="canvases",
    one="Canvas",
)
