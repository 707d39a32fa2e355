"""The page's words, in English and French, and how a request picks its language.

`language(query_lang, accept_language)`: `?lang=fr|en` first (the page's own switch), else the
first of the browser's `Accept-Language` that is offered, else English. Every text the page shows
is here, so a translation is one dictionary; `tests/unit/centre/test_texts.py` checks that both
languages have the same keys.
"""
from __future__ import annotations

__all__ = ["LANGUAGES", "TEXTS", "language"]

LANGUAGES = ("en", "fr")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your communication preferences",
        "intro": "Choose how we may contact you. Your choices apply to every message we send.",
        "channels": "Channels",
        "channels_hint": "Tick the channels you welcome.",
        "channel.email": "Email", "channel.push": "Push notifications",
        "channel.sms": "Text messages (SMS)", "channel.display": "Ads on other websites",
        "channel.web": "Messages on our website", "channel.app": "Messages in our app",
        "quiet": "Quiet hours",
        "quiet_hint": "No message in this time window (your local time). Leave both empty for "
                      "none.",
        "quiet_start": "From", "quiet_end": "Until",
        "max": "At most this many messages a day",
        "max_hint": "0 means none at all.",
        "topics": "Topics that interest you",
        "topic.offers": "Offers and promotions", "topic.new_models": "New models",
        "topic.electric": "Electric vehicles", "topic.events": "Events near you",
        "topic.service": "Servicing and maintenance",
        "save": "Save my choices",
        "saved": "Your choices are saved. They apply within a few seconds.",
        "refused": "These choices could not be saved: {reason}.",
        "busy": "Too many requests. Please wait a minute and try again.",
        "unavailable": "Your choices could not be saved right now. Please try again later.",
        "messages": "The last messages we sent you",
        "messages_none": "We have not sent you any message yet.",
        "messages_unknown": "Your message history cannot be shown right now.",
        "because": "You received this because: {why}",
        "on": "on {channel}, {when}",
        "since": "(chosen on {when})",
        "forbidden_title": "Link not valid",
        "forbidden": "This link is not valid or has expired. Ask for a new one from any of our "
                     "messages.",
        "language": "Français", "language_code": "fr",
    },
    "fr": {
        "title": "Vos préférences de communication",
        "intro": "Choisissez comment nous pouvons vous contacter. Vos choix s'appliquent à chaque "
                 "message que nous envoyons.",
        "channels": "Canaux",
        "channels_hint": "Cochez les canaux que vous acceptez.",
        "channel.email": "E-mail", "channel.push": "Notifications push",
        "channel.sms": "SMS", "channel.display": "Publicités sur d'autres sites",
        "channel.web": "Messages sur notre site", "channel.app": "Messages dans notre application",
        "quiet": "Heures calmes",
        "quiet_hint": "Aucun message pendant ce créneau (votre heure locale). Laissez les deux "
                      "champs vides pour n'en avoir aucun.",
        "quiet_start": "De", "quiet_end": "À",
        "max": "Au plus ce nombre de messages par jour",
        "max_hint": "0 signifie aucun.",
        "topics": "Les sujets qui vous intéressent",
        "topic.offers": "Offres et promotions", "topic.new_models": "Nouveaux modèles",
        "topic.electric": "Véhicules électriques", "topic.events": "Événements près de chez vous",
        "topic.service": "Entretien et révision",
        "save": "Enregistrer mes choix",
        "saved": "Vos choix sont enregistrés. Ils s'appliquent d'ici quelques secondes.",
        "refused": "Ces choix n'ont pas pu être enregistrés : {reason}.",
        "busy": "Trop de demandes. Merci d'attendre une minute avant de réessayer.",
        "unavailable": "Vos choix n'ont pas pu être enregistrés pour le moment. Merci de "
                       "réessayer plus tard.",
        "messages": "Les derniers messages que nous vous avons envoyés",
        "messages_none": "Nous ne vous avons encore envoyé aucun message.",
        "messages_unknown": "Votre historique de messages ne peut pas être affiché pour le "
                            "moment.",
        "because": "Vous avez reçu ce message parce que : {why}",
        "on": "par {channel}, le {when}",
        "since": "(choisi le {when})",
        "forbidden_title": "Lien non valide",
        "forbidden": "Ce lien n'est pas valide ou a expiré. Demandez-en un nouveau depuis l'un "
                     "de nos messages.",
        "language": "English", "language_code": "en",
    },
}


def language(query_lang: str | None, accept_language: str | None) -> str:
    """The page's language for a request."""
    if query_lang in LANGUAGES:
        return query_lang
    weighted = []
    for i, part in enumerate((accept_language or "")[:200].split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        weighted.append((-q, i, tag.strip().lower().split("-")[0]))
    for _q, _i, tag in sorted(weighted):
        if tag in LANGUAGES:
            return tag
    return "en"
