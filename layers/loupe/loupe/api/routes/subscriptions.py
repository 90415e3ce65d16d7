"""Routes of the subscriptions resource, served by the schedules function: reports on a cron (editors
write, every role reads), and their deliveries."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.models.common import Page
from loupe.models.subscriptions import (
    DeliveryListQuery,
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionListQuery,
    SubscriptionUpdate,
)
from loupe.services.subscriptions import subscriptions

router = LoupeRouter()

crud_routes(
    router,
    collection_path="/subscriptions",
    service=subscriptions,
    create_model=SubscriptionCreate,
    update_model=SubscriptionUpdate,
    list_query=SubscriptionListQuery,
    tag="subscriptions",
    names=("Subscription", "Subscriptions"),
)


@router.get(
    "/subscriptions/<subscription_id>/deliveries",
    operation_id="listSubscriptionDeliveries",
    errors=(404,),
    tags=["subscriptions"],
    summary="List a subscription's deliveries, newest first",
    description="Each firing's delivery: `pending` while its runs go or while failed destinations wait to"
    " be retried (a backoff of 1, 2, 4, 8 minutes), then `delivered`, or `failed` after 5 attempts, which"
    " the subscription's `last_status` and `last_error` also say.",
)
def list_subscription_deliveries(
    subscription_id: UUID, caller: Caller, query: Annotated[DeliveryListQuery, Query()]
) -> Page[DeliveryOut]:
    return subscriptions.deliveries(caller, subscription_id, query)
