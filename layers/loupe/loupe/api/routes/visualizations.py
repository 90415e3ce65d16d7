"""Routes of the visualizations function: charts and tables of a query's results (editors write)."""

from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.api.revisions import revision_routes
from loupe.api.shares import share_routes
from loupe.models.visualizations import VisualizationCreate, VisualizationListQuery, VisualizationUpdate
from loupe.services.visualizations import visualizations

router = LoupeRouter()

crud_routes(
    router,
    collection_path="/visualizations",
    service=visualizations,
    create_model=VisualizationCreate,
    update_model=VisualizationUpdate,
    list_query=VisualizationListQuery,
    tag="visualizations",
    names=("Visualization", "Visualizations"),
    cascades=True,
)
revision_routes(
    router,
    collection_path="/visualizations",
    service=visualizations,
    update_model=VisualizationUpdate,
    tag="visualizations",
    one="Visualization",
)
share_routes(router, collection_path="/visualizations", resource_type="visualization", one="Visualization")
