import factory
from allauth.account.models import EmailAddress

from accounts.models import User
from catalog.models import Brand

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"fan{n}@example.com")
    display_name = factory.Sequence(lambda n: f"Fan {n}")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def verified(user, create, extracted, **kwargs):
        """Verified unless `verified=False`: allauth refuses unverified logins."""
        if create and extracted is not False:
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
