from django.urls import path

from pages import views

urlpatterns = [
    path('', views.index, name='index'),
    path('revision', views.revision, name='revision'),
    path('settings', views.settings_kind, name='settings'),
]
